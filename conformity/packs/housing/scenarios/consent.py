"""Consent (CONSENT): grant, reads within scope, transfer only when allowed, revocation by request and by the
household."""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, scenario
from conformity.packs.housing.scenarios.common import home, home_input, login_as

PURPOSE = "accompagnement de la rénovation énergétique"


def _grant(index: int, scope: list[str], transfer: bool) -> Any:
    return home_input(index, scope=scope, transfer_consumption=transfer, purpose=PURPOSE)


def _bad_number(ctx: ScenarioContext) -> dict[str, Any]:
    fiscal = home(ctx, 0)["fiscal_number"]
    return {
        "household": fiscal[:3] + "C" + fiscal[4:],
        "scope": ["dpe"],
        "transfer_consumption": False,
        "purpose": PURPOSE,
    }


CONSENTS = scenario(
    "housing.consent_lifecycle",
    "An adviser asks a household for consent, reads what it covers, is refused what it does not, revokes it; "
    "another household revokes its consent after one read",
    login_as("adviser"),
    Perform("consent.request", _bad_number, name="bad_number"),
    Perform("consent.request", _grant(0, ["dpe", "consumption"], False), name="grant"),
    Perform("home.read", home_input(0, kind="dpe"), name="read_dpe"),
    Perform("home.read", home_input(0, kind="quote"), name="read_out_of_scope"),
    Perform(
        "consumption.transfer",
        home_input(0, recipient="bureau-etudes-thermique", period="2026"),
        name="transfer_refused",
    ),
    Perform("consent.revoke", home_input(0), name="revoke"),
    Perform("home.read", home_input(0, kind="dpe"), name="read_after_revoke"),
    Perform("consent.request", _grant(1, ["dpe", "consumption"], True), name="grant_transfer"),
    Perform(
        "consumption.transfer",
        home_input(1, recipient="bureau-etudes-thermique", period="2026"),
        name="transfer_allowed",
    ),
    SetFaults({"dataspace": {"revoke_after": 1}}),
    Perform("home.read", home_input(1, kind="consumption"), name="read_before_household_revokes"),
    Perform("home.read", home_input(1, kind="dpe"), name="household_revoked"),
    Perform("home.read", home_input(1, kind="dpe"), name="after_household_revoked"),
    SetFaults({"dataspace": None}),
)
