"""Who counts as one person for the four-eyes rule: an account and the admin who last set its password.

An admin who sets an account's password (creating the account with one, or resetting a lost one) knows it, and may
sign in with it and change it as its "owner" before the owner does. For ``SAME_PERSON_PERIOD`` after that (the
agency may choose another period), the account and that admin count as one person: their acceptances of a MUST
make one, not the two the four-eyes rule asks for. A password set by the server's operator (``usine agency account
reset-password``, ``account add``) or by its owner binds no one (the registry keeps no setter for it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: how long an account and the admin who last set its password count as one person
SAME_PERSON_PERIOD = dt.timedelta(days=90)


def person_name(name: str, login: str) -> str:
    """How reviews and decisions name an account's person (the login keeps two people with one name apart)."""
    return f"{name} ({login})"


@dataclass(frozen=True, slots=True)
class PasswordSet:
    """An account whose password an admin set (by reset or creation), at ``at``; names as reviews give them."""

    account: str  # the account's person name ("Alice (alice)")
    login: str
    by: str       # the admin's person name
    by_login: str
    at: str

    def why(self) -> str:
        return (f"{self.login}'s password was set by {self.by_login} on {self.at}: their acceptances count as "
                "one person's")


@dataclass(frozen=True, slots=True)
class Persons:
    """The pairs of reviewer names that count as one person (none: every name is its own person)."""

    pairs: tuple[PasswordSet, ...] = ()

    def one(self, a: str, b: str) -> PasswordSet | None:
        """Why two distinct reviewer names are one person (None: two people, or the same name)."""
        return next((p for p in self.pairs if {a, b} == {p.account, p.by}), None)

    def same(self, a: str, b: str) -> bool:
        return a == b or self.one(a, b) is not None


#: no pairs: every reviewer name is its own person
NOBODY_PAIRED = Persons()
