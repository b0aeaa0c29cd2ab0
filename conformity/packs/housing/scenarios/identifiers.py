"""Housing identifiers (HOUSINGID): geocoding, the building registry, RNB ids, statuses, retries."""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, scenario
from conformity.packs.housing.scenarios.common import address, login_as

ACTION = "building.identify"


def _by_address(situation: str) -> Any:
    return lambda ctx: {"address": address(ctx, situation)["query"]}


def _dashed(ctx: ScenarioContext) -> dict[str, Any]:
    """An RNB id as people write it: lower case, in three dashed groups (the software normalises it)."""
    rnb = ctx.fixtures["buildings"][0]["rnb_id"].lower()
    return {"rnb_id": f"{rnb[:4]}-{rnb[4:8]}-{rnb[8:]}"}


def _invalid(ctx: ScenarioContext) -> dict[str, Any]:
    """An RNB id with an I (not in the registry's alphabet): refused before any look-up."""
    rnb = ctx.fixtures["buildings"][0]["rnb_id"]
    return {"rnb_id": rnb[:5] + "I" + rnb[6:]}


IDENTIFY = scenario(
    "housing.identify_buildings",
    "Find buildings: by address (complete, low score, incomplete, no building, poor score), by RNB id (dashed, "
    "invalid), by parcel, and again while the registry answers 503 once",
    login_as("diagnostician"),
    Perform(ACTION, _by_address("complete"), name="complete"),
    Perform(ACTION, _by_address("low_score"), name="low_score"),
    Perform(ACTION, _by_address("incomplete"), name="incomplete"),
    Perform(ACTION, _by_address("no_building"), name="no_building"),
    Perform(ACTION, _by_address("poor"), name="poor_score"),
    Perform(ACTION, _dashed, name="dashed_id"),
    Perform(ACTION, _invalid, name="invalid_id"),
    Perform(ACTION, lambda ctx: {"parcel": ctx.fixtures["buildings"][1]["parcel"]}, name="parcel"),
    SetFaults({"buildings": {"unavailable": 1, "retry_after": 1}}),
    Perform(ACTION, _by_address("complete"), name="retry"),
    SetFaults({"buildings": None}),
    expected_seconds=2.0,
)
