"""Action practitioner.login."""

from __future__ import annotations

from typing import Any

import httpx

from refapp.actions import action
from refapp.app import Application
from refapp.oidc import LoginRefused


@action("practitioner.login")
def practitioner_login(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    try:
        app.practitioner = app.oidc.login(data["login_hint"])
    except LoginRefused as exc:
        app.practitioner = None
        return {"authenticated": False, "error": str(exc)[:500]}
    except httpx.HTTPError as exc:
        app.practitioner = None
        return {"authenticated": False, "error": f"identity provider unreachable: {type(exc).__name__}: {exc}"[:500]}
    return {"authenticated": True, "national_id": app.practitioner.national_id}
