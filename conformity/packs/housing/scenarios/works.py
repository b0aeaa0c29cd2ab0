"""Quotes and works (WORKS): a contractor sends a harmonised quote, then records the works for the carnet."""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, scenario
from conformity.packs.housing.scenarios.common import home, home_input, login_as

GESTES = [
    {"code": "ISO-COMBLES", "quantity": 62.5, "unit": "m2", "unit_price_ht": 38.0, "vat_rate": 5.5},
    {"code": "PAC-AIR-EAU", "quantity": 1, "unit": "unit", "unit_price_ht": 11200.0, "vat_rate": 5.5},
    {"code": "VMC-DOUBLE-FLUX", "quantity": 1, "unit": "forfait", "unit_price_ht": 4300.0, "vat_rate": 10},
]


def _record(ctx: ScenarioContext) -> dict[str, Any]:
    quote = ctx.outputs.get("quote") or {}
    return {
        "household": home(ctx, 0)["fiscal_number"],
        "quote_id": quote.get("quote_id", "unknown"),
        "completed": "2027-05-20",
    }


QUOTE_AND_WORKS = scenario(
    "housing.quote_and_works",
    "A contractor obtains the household's consent, sends a harmonised quote, then records the works done",
    login_as("contractor"),
    Perform(
        "consent.request",
        home_input(0, scope=["quote", "works"], transfer_consumption=False, purpose="devis et travaux de rénovation"),
        name="grant",
    ),
    Perform("quote.send", home_input(0, gestes=GESTES, valid_days=90), name="quote"),
    Perform("works.record", _record, name="works"),
)
