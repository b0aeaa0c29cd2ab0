"""Request dependencies: which session a request belongs to, and whether its token may act there."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from sandbox.problems import Problem
from sandbox.store import Store


def store_of(request: Request) -> Store:
    return request.app.state.store


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def require_admin(request: Request) -> None:
    token = bearer(request)
    if token is None:
        raise Problem(401, "admin-token-missing", "the admin API needs 'Authorization: Bearer <admin token>'",
                      headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(token, request.app.state.config.admin_token):
        raise Problem(403, "admin-token-invalid", "this is not the sandbox's admin token")


def get_session(request: Request, session_id: str) -> dict[str, Any]:
    """The open session named in the URL, or a 404 problem."""
    session = store_of(request).get_session(session_id)
    if session is None:
        raise Problem(404, "session-unknown", f"no test session {session_id!r}")
    if session["state"] != "open":
        raise Problem(410, "session-closed", f"test session {session_id} is closed")
    return session


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a session service: the session, the token's record."""

    session: dict[str, Any]
    token: dict[str, Any]


def require_access_token(request: Request, session_id: str) -> Caller:
    """A valid, unexpired access token issued to this very session, or a 401/403 problem."""
    session = get_session(request, session_id)
    token = bearer(request)
    if token is None:
        raise Problem(401, "token-missing", "this service needs 'Authorization: Bearer <access token>'",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_request"'})
    record = store_of(request).get_token(token)
    if record is None:
        raise Problem(401, "token-invalid", "unknown or forged access token",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if record["scope"] != session_id:
        raise Problem(403, "token-other-session", "this token belongs to another test session")
    if record["kind"] != "access":
        raise Problem(401, "token-wrong-kind", f"a {record['kind']} token is not an access token for this service",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if record["expired"]:
        raise Problem(401, "token-expired", "the access token has expired",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return Caller(session, record)


def require_session_token(request: Request, session_id: str) -> dict[str, Any]:
    """The session's own session token (for reading its trace), or a 401/403 problem."""
    session = get_session(request, session_id)
    token = bearer(request)
    if token is None:
        raise Problem(401, "token-missing", "reading a trace needs the session token",
                      headers={"WWW-Authenticate": "Bearer"})
    record = store_of(request).get_token(token)
    if record is None or record["kind"] != "session":
        raise Problem(401, "token-invalid", "not a session token")
    if record["scope"] != session_id:
        raise Problem(403, "token-other-session", "this session token belongs to another test session")
    return session


def require_installation(request: Request) -> dict[str, Any]:
    """The installed software calling the production services, from its installation token."""
    token = bearer(request)
    if token is None:
        raise Problem(401, "installation-token-missing", "production services need the installation's token",
                      headers={"WWW-Authenticate": "Bearer"})
    inst = store_of(request).installation_by_token_hash(token_hash(token))
    if inst is None:
        raise Problem(401, "installation-token-invalid", "unknown installation token",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if inst.get("state") == "revoked":
        raise Problem(401, "installation-token-revoked", f"the token of installation {inst['id']} was revoked",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if inst.get("state", "active") != "active":
        raise Problem(403, "installation-inactive", f"installation {inst['id']} is {inst.get('state')}")
    return inst


def fault(session: dict[str, Any], service: str) -> dict[str, Any]:
    """The faults currently injected into one service of a session (empty dict: none)."""
    return dict(session.get("faults", {}).get(service) or {})
