"""DPE exchange (DPE): a diagnostician files DPEs; a blocking one and an incompletely geocoded one are not filed."""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, scenario
from conformity.packs.housing.scenarios.common import address, home, login_as

ACTION = "dpe.file"


def _file(index: int) -> Any:
    def make(ctx: ScenarioContext) -> dict[str, Any]:
        h = home(ctx, index)
        return {"address": h["address"], "fiscal_number": h["fiscal_number"], "visit": dict(h["visit"])}

    return make


def _future_year(ctx: ScenarioContext) -> dict[str, Any]:
    """A visit whose year of construction is in the future: the observatory's test mode finds an erreur_saisie."""
    h = home(ctx, 1)
    return {"address": h["address"], "fiscal_number": h["fiscal_number"], "visit": dict(h["visit"], year=2031)}


def _incomplete(ctx: ScenarioContext) -> dict[str, Any]:
    """A home whose address the geocoder finds only at street level: no DPE can be filed."""
    h = home(ctx, 0)
    return {
        "address": address(ctx, "incomplete")["query"],
        "fiscal_number": h["fiscal_number"],
        "visit": dict(h["visit"]),
    }


FILE = scenario(
    "housing.dpe_filing",
    "A diagnostician files DPEs: a complete one, one with a low geocoding score, one with a blocking input "
    "error, one whose address is geocoded only at street level",
    login_as("diagnostician"),
    Perform(ACTION, _file(0), name="complete"),
    Perform(ACTION, _file(2), name="low_score"),
    Perform(ACTION, _future_year, name="blocking"),
    Perform(ACTION, _incomplete, name="incomplete"),
    expected_seconds=1.5,
)
