"""Scenario: the health directory (DIRECTORY).

``directory.searches`` makes the directory announce ``max-age=0`` (every cached answer must be
revalidated before use), then asks the software to search a practitioner by national id twice, a
family name typed in lower case with its diacritics (two homonyms, one of them retired), the care
site's organisation by FINESS-like id, and to send a message to the retired practitioner's address.
"""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, scenario
from conformity.packs.health.scenarios import people


def retired(ctx: ScenarioContext) -> dict[str, Any]:
    """The inactive practitioner of the fixtures (the first practitioner when there is none)."""
    return next((p for p in ctx.fixtures["practitioners"] if not p.get("active", True)), people.practitioner(ctx, 1))


def homonym(ctx: ScenarioContext) -> dict[str, Any]:
    """A family name shared by an active and a retired practitioner, typed in lower case."""
    return {"family_name": retired(ctx)["family_name"].lower()}


def to_retired(ctx: ScenarioContext) -> dict[str, Any]:
    return {"sender": people.practitioner(ctx, 0)["mss_address"], "recipients": [retired(ctx)["mss_address"]],
            "subject": "Demande d'avis", "body": "Pouvez-vous revoir ce patient ?"}


SEARCHES = scenario(
    "directory.searches",
    "Searches by national id (twice, max-age 0), by name (homonyms, one retired), by FINESS; a retired recipient",
    SetFaults({"directory": {"max_age": 0}}),
    Perform("directory.search", lambda ctx: {"national_id": people.practitioner(ctx, 1)["national_id"]},
            name="by_national_id"),
    Perform("directory.search", lambda ctx: {"national_id": people.practitioner(ctx, 1)["national_id"]},
            name="by_national_id_again"),
    Perform("directory.search", homonym, name="by_name"),
    Perform("directory.search", lambda ctx: {"organisation_id": ctx.fixtures["sites"][0]["site_id"]},
            name="organisation"),
    Perform("message.send", to_retired, name="to_retired"),
    SetFaults({"directory": None}),
)
