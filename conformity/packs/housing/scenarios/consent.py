"""Consent (CONSENT): grant, reads within scope, transfer only when allowed, revocation by request and by the
household."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, scenario
from conformity.packs.housing.scenarios.common import home, home_input, login_as

PURPOSE = "accompagnement de la rénovation énergétique"


def _grant(index: int, scope: list[str], transfer: bool) -> Any:
    return home_input(index, scope=scope, transfer_consumption=transfer, purpose=PURPOSE)


#: fiscal housing numbers out of format ([0-9][0-9AB][0-9]{10}), each refused before any request (HOUSINGID-010): a
#: digit where only digits go, 13 characters (a check that does not anchor its end), a letter other than A or B in the
#: second place, a lower-case a (a check that ignores case)
BAD_NUMBERS: dict[str, Callable[[str], str]] = {
    "bad_number": lambda f: f[:3] + "C" + f[4:],
    "bad_number_long": lambda f: f + f[-1],
    "bad_number_letter": lambda f: f[0] + "C" + f[2:],
    "bad_number_lower": lambda f: f[0] + "a" + f[2:],
}


def _bad_number(name: str) -> Any:
    def make(ctx: ScenarioContext) -> dict[str, Any]:
        return {
            "household": BAD_NUMBERS[name](home(ctx, 0)["fiscal_number"]),
            "scope": ["dpe"],
            "transfer_consumption": False,
            "purpose": PURPOSE,
        }

    return make


CONSENTS = scenario(
    "housing.consent_lifecycle",
    "An adviser asks a household for consent, reads what it covers, is refused what it does not, revokes it; "
    "another household revokes its consent after one read",
    login_as("adviser"),
    *(Perform("consent.request", _bad_number(name), name=name) for name in BAD_NUMBERS),
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
