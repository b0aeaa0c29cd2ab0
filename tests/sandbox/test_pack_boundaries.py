"""A test session is served its pack's services only, and JSON bodies are UTF-8 only (RFC 8259 §8.1)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.sessions import services

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "sandbox" / "openapi.json").read_text())


def operations(service: str) -> list[tuple[str, str]]:
    """(method, path after the session id) of every operation of a service, its path parameters filled in."""
    found = []
    for path, ops in OPENAPI["paths"].items():
        prefix = f"/s/{{session_id}}/{service}/"
        if path.startswith(prefix):
            tail = re.sub(r"\{[^}]+\}", "x", path[len(prefix):])
            found += [(method.upper(), f"{service}/{tail}") for method in ops if method in ("get", "post", "put")]
    return found


def test_a_session_of_one_pack_is_not_served_another_packs_services(new_session: Callable[..., dict[str, Any]],
                                                                    client: httpx.Client) -> None:
    """Before, a health session's token reached the housing observatory, geocoder and identity provider (and the
    reverse): its endpoints named its pack's services, the app served every pack's."""
    for pack, other in (("health", "housing"), ("housing", "health")):
        s = new_session(pack=pack)
        base = s["endpoints"]["trace"].removesuffix("/trace")
        for name in services(other):
            assert operations(name), name
            for method, tail in operations(name):
                r = client.request(method, f"{base}/{tail}", json={} if method != "GET" else None)
                assert r.status_code == 404 and r.json()["type"].endswith(":service-not-in-pack"), (pack, tail, r.text)
                assert pack in r.json()["detail"]
        own = "idp" if pack == "health" else "proconnect"
        assert client.get(f"{base}/{own}/.well-known/openid-configuration").status_code == 200
    every = new_session()  # a session of no pack is every installed pack's
    base = every["endpoints"]["trace"].removesuffix("/trace")
    for name in ("idp", "proconnect"):
        assert client.get(f"{base}/{name}/.well-known/openid-configuration").status_code == 200


@pytest.mark.parametrize(("content_type", "body", "status", "says"), [
    # declared in another charset: refused before it is read
    ("application/json; charset=utf-16", '{"to": []}'.encode("utf-16"), 415, "charset=utf-16"),
    ('application/json; charset="UTF-32"', '{"to": []}'.encode("utf-32"), 415, "charset=utf-32"),
    # undeclared UTF-16 (with and without its byte order mark): Python's json.loads of bytes reads it, JSON does not
    ("application/json", '{"to": []}'.encode("utf-16"), 400, "not UTF-8"),
    ("application/json", '{"to": []}'.encode("utf-16-le"), 400, "not UTF-8"),
])
def test_a_json_body_that_is_not_utf8_is_refused(new_session: Callable[..., dict[str, Any]],
                                                 mint: Callable[..., str], client: httpx.Client, content_type: str,
                                                 body: bytes, status: int, says: str) -> None:
    """Before, a message or a document in UTF-16 was parsed (FastAPI's and the services' fallback parser take it) and
    acted on: 422 for this one, 201 for a valid one."""
    s = new_session(pack="health")
    headers = {"Authorization": f"Bearer {mint(s)}", "Content-Type": content_type}
    for url in (s["endpoints"]["mss"] + "/messages", s["endpoints"]["dmp"] + "/documents"):
        r = client.post(url, content=body, headers=headers)
        assert r.status_code == status and says in r.json()["detail"], (url, r.text)
    ok = client.post(s["endpoints"]["mss"] + "/messages", content=b'{"to": []}',
                     headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 422  # UTF-8 declared, or not: read (and this body then judged on its members)
