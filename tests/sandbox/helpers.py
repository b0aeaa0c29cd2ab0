"""Helpers shared by the sandbox tests (the admin token of the test server, reading a served trace)."""

from __future__ import annotations

from typing import Any

import httpx

ADMIN_TOKEN = "test-admin-token"


def trace_payload(response: httpx.Response) -> dict[str, Any]:
    """The trace a trace endpoint answered: the payload of the signed trace (JWS), not verified here."""
    from conformity.signing import unverified_payload

    assert response.status_code == 200, response.text
    return unverified_payload(response.json())
