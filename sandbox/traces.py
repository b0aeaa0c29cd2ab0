"""Trace export: a session's exchanges as canonical JSON signed with the sandbox's Ed25519 key."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request

from conformity import __version__
from conformity.checks.trace import TRACE_FORMAT
from conformity.signing import SigningKey
from sandbox.deps import require_session_token, store_of
from sandbox.problems import HTTPProblem
from sandbox.store import Store

router = APIRouter(tags=["traces"])


def build_trace(store: Store, session: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """The signed trace of one session: its identity, seed, fixtures and every exchange. A session swept since it was
    read (its exchanges, deleted in one transaction, read as none) is 404 ``session-unknown``, never signed empty."""
    exchanges = store.exchanges(session["id"])
    if not exchanges and store.get_session(session["id"]) is None:
        raise HTTPProblem(404, "session-unknown", f"no test session {session['id']!r} (swept after its retention)")
    doc = {
        "format": TRACE_FORMAT,
        "sandbox": {"version": __version__, "key_id": key.kid},
        "session": {"id": session["id"], "label": session["label"], "seed": session["seed"],
                    "created": session["created"], "base_url": session["base_url"],
                    "client_id": session["client_id"], "bound_to": session.get("bound_to"),
                    # the run the sandbox issued that this session plays a scenario of (None: outside any run)
                    "run": session.get("run"),
                    # how the client secret reads once redacted ([redacted sha256:…]): checks tell it from tokens
                    "client_secret_sha256": str(session.get("client_secret_sha256", ""))[:16]},
        "fixtures": session["fixtures"],
        "exported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "exchanges": exchanges,
    }
    return key.sign_document(doc)


@router.get("/s/{session_id}/trace", summary="The session's own signed trace (session token)")
def session_trace(request: Request, session_id: str) -> dict[str, Any]:
    session = require_session_token(request, session_id)
    return build_trace(store_of(request), session, request.app.state.trace_key)


@router.get("/.well-known/usine-trace-keys", summary="Public keys that sign traces")
def trace_keys(request: Request) -> dict[str, Any]:
    key: SigningKey = request.app.state.trace_key
    return {"keys": [key.verify_key.to_jwk() | {"pem": key.verify_key.pem()}]}
