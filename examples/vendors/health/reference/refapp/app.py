"""The application state for one test session: configuration, the logged-in practitioner, local records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from refapp.context import Context
from refapp.oidc import OIDCClient, PractitionerSession


@dataclass
class Application:
    ctx: Context
    practitioner: PractitionerSession | None = None
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)  # local patient records by ref
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # documents this software produced

    def __post_init__(self) -> None:
        self.oidc = OIDCClient(self.ctx)
        for p in self.ctx.fixtures.get("patients", ()):
            self.patients[p["ref"]] = {"ref": p["ref"], "traits": dict(p["traits"]), "status": "provisional"}

    def access_token(self) -> str:
        """The logged-in practitioner's access token, logging the first practitioner in when needed."""
        if self.practitioner is None:
            first = self.ctx.fixtures["practitioners"][0]["national_id"]
            self.practitioner = self.oidc.login(first)
        return self.practitioner.access_token

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token()}"}
