"""How a pack configures the sandbox's one OpenID Connect provider: its URL name, accounts, claims, levels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OidcProfile:
    """One provider's configuration (the provider is mounted once per profile, under ``/s/{sid}/<service>``)."""

    #: the provider's name in URLs and fault documents (``idp``, ``proconnect``…)
    service: str
    #: the session fixtures' key listing the accounts that may log in
    accounts: str
    #: the account field ``login_hint`` names
    login_key: str
    #: the account field used as the ID token's ``sub``
    subject_key: str
    #: userinfo claims of an account
    claims: Callable[[dict[str, Any]], dict[str, Any]]
    #: the userinfo claims also copied into the ID token
    id_token_claims: tuple[str, ...] = ()
    #: ``acr_values_supported``; the automated login authenticates at the first
    acr_values: tuple[str, ...] = ("eidas1",)
    scopes: tuple[str, ...] = ("openid", "profile")
    #: the services (URL names) an access token of this provider may be sent to (its ``aud``)
    audience: tuple[str, ...] = ()
    #: what ``login_hint`` is, for error messages and the API's documentation
    login_hint: str = "an account of the session's fixtures"

    @property
    def acr(self) -> str:
        return self.acr_values[0]

    def account(self, session: dict[str, Any], hint: str) -> dict[str, Any] | None:
        """The account of the session's fixtures that ``hint`` names (None if none does)."""
        return next((a for a in session["fixtures"].get(self.accounts, []) if a.get(self.login_key) == hint), None)

    def by_subject(self, session: dict[str, Any], sub: str) -> dict[str, Any] | None:
        return next((a for a in session["fixtures"].get(self.accounts, []) if a.get(self.subject_key) == sub), None)

    def others(self, session: dict[str, Any], sub: str) -> list[dict[str, Any]]:
        """The session's other accounts (for a userinfo answering someone else's claims)."""
        return [a for a in session["fixtures"].get(self.accounts, []) if a.get(self.subject_key) != sub]
