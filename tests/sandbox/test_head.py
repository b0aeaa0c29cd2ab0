"""HEAD is GET without its body (RFC 9110 §9.3.2: a general-purpose server supports both), on a real server: the
sandbox's 405 answers listed HEAD in Allow for every GET path, yet a HEAD was itself answered 405 (FastAPI routes
match GET only). The trace records the HEAD, with the empty body the software received."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.server import RunningSandbox
from tests.sandbox.helpers import ADMIN_TOKEN, trace_payload


@pytest.mark.parametrize(("path", "admin_token"), [("/health", False), ("/openapi.json", False), ("/docs", False),
                                                   ("/admin/listeners", True), ("/admin/sessions", True)])
def test_head_answers_what_get_answers_without_the_body(sandbox_server: RunningSandbox, path: str,
                                                        admin_token: bool) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if admin_token else {}
    with httpx.Client(base_url=sandbox_server.base_url, headers=headers, timeout=30) as http:
        get, head = http.get(path), http.head(path)
    assert head.status_code == get.status_code == 200, (head.status_code, get.status_code)
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    if path != "/admin/sessions":  # (a listing that grows while other tests run)
        assert head.headers["content-length"] == get.headers["content-length"]


def test_a_session_head_is_recorded_as_the_head_it_was(sandbox_server: RunningSandbox, admin: httpx.Client,
                                                       new_session: Callable[..., dict[str, Any]]) -> None:
    session = new_session()
    url = f"{session['endpoints']['idp']}/.well-known/openid-configuration"
    assert httpx.get(url, timeout=30).status_code == 200
    head = httpx.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    r = httpx.post(url, timeout=30)
    assert r.status_code == 405 and "HEAD" in r.headers["allow"]
    recorded = [e for e in trace_payload(admin.get(f"/admin/sessions/{session['session_id']}/trace"))["exchanges"]
                if e.get("kind") == "http" and e["request"]["path"].endswith("/openid-configuration")]
    assert [(e["request"]["method"], e["response"]["status"]) for e in recorded] == [("GET", 200), ("HEAD", 200),
                                                                                       ("POST", 405)]
    assert recorded[0]["response"]["body"] != {} and recorded[1]["response"]["body"] == {}
