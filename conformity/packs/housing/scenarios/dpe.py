"""DPE exchange (DPE): a diagnostician files DPEs; a blocking one and an incompletely geocoded one are not filed;
two visits measure exactly a class bound (primary energy, then emissions), where ``<`` and ``<=`` differ."""

from __future__ import annotations

import random
from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, scenario
from conformity.packs.housing.rules import dpe_class, single_class, thresholds_of
from conformity.packs.housing.scenarios.common import address, home, login_as

ACTION = "dpe.file"
#: the steps visiting a home exactly on a class bound (primary energy, then emissions)
ON_BOUNDS = ("energy_on_bound", "emissions_on_bound")


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


def _on_bound(indicator: str) -> Any:
    """A visit of home 1 whose ``indicator`` (``energy``: primary energy, ``emissions``) is exactly one of the class
    bounds of the wave's DPE-005 (each class's upper bound is outside it), the bound drawn from the seed; the other
    indicator is well inside class A, so the label is the class of the one on its bound (the worse of the two). Random
    one-decimal figures almost never fall on a bound: a software reading a bound as inside its class passed."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        thresholds = thresholds_of(dict(ctx.parameters.get("DPE-005", {})))
        energy_bounds, emissions_bounds = [t[1] for t in thresholds], [t[2] for t in thresholds]
        rng = random.Random(f"housing.dpe-bounds:{ctx.seed}")  # its own draws: the other steps' inputs unchanged
        on_energy, on_emissions = rng.randrange(len(energy_bounds)), rng.randrange(len(emissions_bounds))
        inside_a = (round(rng.uniform(energy_bounds[0] / 2, energy_bounds[0] - 1), 1),
                    round(rng.uniform(emissions_bounds[0] / 2, emissions_bounds[0] - 1), 1))
        if indicator == "energy":
            ep, ges = float(energy_bounds[on_energy]), inside_a[1]
        else:
            ep, ges = inside_a[0], float(emissions_bounds[on_emissions])
        h = home(ctx, 1)
        visit = dict(h["visit"], ep_conso=ep, emissions=ges, energy_class=dpe_class(ep, ges, thresholds),
                     emissions_class=single_class(ges, emissions_bounds))
        return {"address": h["address"], "fiscal_number": h["fiscal_number"], "visit": visit}

    return make


FILE = scenario(
    "housing.dpe_filing",
    "A diagnostician files DPEs: a complete one, one with a low geocoding score, one with a blocking input "
    "error, one whose address is geocoded only at street level, one whose primary energy and one whose emissions "
    "are exactly on a class bound",
    login_as("diagnostician"),
    Perform(ACTION, _file(0), name="complete"),
    Perform(ACTION, _file(2), name="low_score"),
    Perform(ACTION, _future_year, name="blocking"),
    Perform(ACTION, _incomplete, name="incomplete"),
    Perform(ACTION, _on_bound("energy"), name=ON_BOUNDS[0]),
    Perform(ACTION, _on_bound("emissions"), name=ON_BOUNDS[1]),
    expected_seconds=2.0,
)
