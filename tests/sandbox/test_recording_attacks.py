"""The recording and the trace under attack: secrets sent where no rule names them, requests built to be misrecorded,
credentials past their life."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx

from sandbox.server import RunningSandbox
from tests.sandbox.test_sessions import bearer, problem


def test_an_expired_session_token_no_longer_reads_the_trace(new_session: Callable[..., dict[str, Any]],
                                                            client: httpx.Client,
                                                            sandbox_server: RunningSandbox) -> None:
    """Session tokens live 7 days; reading a trace with one past its expiry was still served."""
    s = new_session(seed=63)
    store = sandbox_server.server.config.app.state.store
    expired = secrets.token_urlsafe(32)
    store.put_token(expired, "session", s["session_id"], {"session_id": s["session_id"]}, ttl=-1)
    problem(client.get(s["endpoints"]["trace"], headers=bearer(expired)), 401, "token-expired")
    assert client.get(s["endpoints"]["trace"], headers=bearer(s["credentials"]["session_token"])).status_code == 200
