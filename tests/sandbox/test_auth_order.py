"""Credentials before bodies: a request without valid credentials is refused 401 (403 for credentials of the wrong
kind) before its body is read as JSON, whatever the body — an unauthenticated caller learns nothing of the API's
parsing and costs the sandbox no parse."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from sandbox.server import RunningSandbox

#: the OAuth endpoints authenticate the client from the form body itself (RFC 6749 §2.3.1) or take none (authorize)
BODY_AUTHENTICATES = re.compile(r"/(authorize|token)$")
WRITES = ("post", "put", "patch", "delete")


def operations(sandbox_server: RunningSandbox) -> list[tuple[str, str]]:
    doc: dict[str, Any] = sandbox_server.server.config.app.openapi()
    return [(method.upper(), path) for path, ops in doc["paths"].items() for method in ops
            if method in WRITES and not BODY_AUTHENTICATES.search(path)]


def test_every_write_answers_401_before_reading_a_bad_body(sandbox_server: RunningSandbox, client: httpx.Client,
                                                          new_session: Any) -> None:
    sid = new_session()["session_id"]
    wrong: list[str] = []
    seen = 0
    for method, template in operations(sandbox_server):
        path = re.sub(r"\{[^}]+\}", "x", template.replace("{session_id}", sid))
        for headers, body in (({"Content-Type": "application/json"}, b"{"),  # not JSON
                              ({"Content-Type": "text/plain"}, b"{}"),  # not the media type
                              ({"Content-Type": "application/json; charset=utf-16"}, "{}".encode("utf-16"))):
            for auth in ({}, {"Authorization": "Bearer " + "f" * 43}):  # none; one the sandbox never issued
                r = client.request(method, path, content=body, headers=headers | auth)
                seen += 1
                if r.status_code not in (401, 403) or not r.headers["content-type"].startswith("application/problem"):
                    wrong.append(f"{method} {template} {headers} {sorted(auth)}: {r.status_code} {r.text[:120]}")
    assert seen > 100  # the admin API, every service, the production role
    assert not wrong, "\n".join(wrong)


def test_secure_messaging_says_401_first(new_session: Any, client: httpx.Client) -> None:
    """The report that started it: the messaging service answered 400 json-malformed to a caller without a token."""
    sid = new_session()["session_id"]
    r = client.post(f"/s/{sid}/mss/messages", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "token-missing"
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/admin/sessions", "/admin/runs", "/admin/harness-tokens"])
def test_admin_api_says_401_first(client: httpx.Client, path: str) -> None:
    r = client.post(path, content=b"[", headers={"Content-Type": "application/json"})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "admin-token-missing"
