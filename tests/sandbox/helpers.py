"""Helpers shared by the sandbox tests (the admin token of the test server, reading a served trace, a real login)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

ADMIN_TOKEN = "test-admin-token"
REDIRECT_URI = "http://127.0.0.1:9/callback"


def create_session(admin: httpx.Client, seed: int, **extra: Any) -> dict[str, Any]:
    """A test session created through the admin API (``extra``: more members of the request): its session view."""
    r = admin.post("/admin/sessions", json={"seed": seed, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def trace_payload(response: httpx.Response) -> dict[str, Any]:
    """The trace a trace endpoint answered: the payload of the signed trace (JWS), not verified here."""
    from conformity.signing import unverified_payload

    assert response.status_code == 200, response.text
    return unverified_payload(response.json())


def login(client: httpx.Client, s: dict[str, Any]) -> dict[str, Any]:
    """A real login at the session's identity provider (code flow with PKCE): its token answer (access, ID and
    refresh tokens); skips when the sandbox has no identity provider."""
    creds, idp = s["credentials"], s["endpoints"]["idp"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    r = client.get(idp + "/authorize", params={
        "response_type": "code", "client_id": creds["client_id"], "redirect_uri": REDIRECT_URI, "scope": "openid",
        "state": "st-1", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256",
        "login_hint": s["fixtures"]["practitioners"][0]["national_id"]})
    if r.status_code == 404:
        pytest.skip("this sandbox has no identity provider")
    assert r.status_code in (302, 303), r.text
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = client.post(idp + "/token", auth=(creds["client_id"], creds["client_secret"]), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return r.json()
