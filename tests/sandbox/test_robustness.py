"""Bad input never breaks the sandbox: every error is a problem document, and valid requests still work."""

from __future__ import annotations

import base64
import secrets
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.signing import KeyRing, VerifyKey, verify_document
from sandbox.server import RunningSandbox

PROBLEM = "application/problem+json"
MEMBERS = {"type", "title", "status", "detail", "code"}


@pytest.fixture(scope="module")
def world(sandbox_server: RunningSandbox, admin: httpx.Client) -> dict[str, Any]:
    """A session with an access token, and an installation with its token."""
    s = admin.post("/admin/sessions", json={"seed": 31, "label": "robustness"}).json()
    token = secrets.token_urlsafe()
    sandbox_server.server.config.app.state.store.put_token(
        token, "access", s["session_id"], {"sub": s["fixtures"]["practitioners"][0]["national_id"]}, ttl=600)
    inst = admin.post("/admin/installations", json={
        "vendor_id": "acme", "software": {"id": "a", "name": "A", "version": "1"}, "site": {"id": "1", "size": "S"},
        "wave": "2026-W1", "category": "GP"}).json()
    return {"session": s, "token": token, "installation_token": inst["token"]}


@pytest.fixture(scope="module")
def http(sandbox_server: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as c:
        yield c


def valid_message(s: dict[str, Any]) -> dict[str, Any]:
    fx = s["fixtures"]
    return {"from": fx["practitioners"][0]["mss_address"], "to": [fx["practitioners"][1]["mss_address"]],
            "subject": "ok", "body": "ok",
            "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
                             "content": base64.b64encode(b"%PDF").decode(),
                             "patient": {"ins": fx["patients"][0]["ins"], "oid": fx["patients"][0]["oid"]}}]}


def assert_problem(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:300])
    assert r.headers.get("content-type") == PROBLEM, (r.request.url, r.headers.get("content-type"))
    doc = r.json()
    assert set(doc) >= MEMBERS, doc
    assert doc["status"] == r.status_code
    assert doc["type"] == "urn:usine:problem:" + doc["code"]
    assert all(isinstance(doc[m], str) and doc[m] for m in MEMBERS - {"status"})


def bad_requests(world: dict[str, Any], admin_token: str) -> list[Callable[[httpx.Client], httpx.Response]]:
    s = world["session"]
    sid, token = s["session_id"], world["token"]
    auth = {"Authorization": f"Bearer {token}"}
    prod = {"Authorization": f"Bearer {world['installation_token']}"}
    adm = {"Authorization": f"Bearer {admin_token}"}
    mss = f"/s/{sid}/mss/messages"
    js = {"content-type": "application/json"}
    return [
        # malformed JSON
        lambda c: c.post(mss, content=b'{"from": "a@b.mssante.fr",', headers=auth | js),
        lambda c: c.post(mss, content=b"", headers=auth | js),
        lambda c: c.post(mss, content=b"null", headers=auth | js),
        lambda c: c.post(mss, content=b"[1, 2", headers=auth | js),
        lambda c: c.post(mss, content=b"[" * 100_000, headers=auth | js),
        lambda c: c.post("/prod/mss/messages", content=b"{{}", headers=prod | js),
        lambda c: c.post("/admin/sessions", content=b"{seed: 1}", headers=adm | js),
        lambda c: c.put(f"/admin/sessions/{sid}/faults", content=b"{'mss': 1}", headers=adm | js),
        # wrong content types
        lambda c: c.post(mss, content=b"from=a", headers=auth | {"content-type": "application/x-www-form-urlencoded"}),
        lambda c: c.post(mss, content=b"<message/>", headers=auth | {"content-type": "application/xml"}),
        lambda c: c.post(mss, files={"f": ("a.txt", b"x")}, headers=auth),
        lambda c: c.post("/prod/mss/messages", content=b"{}", headers=prod | {"content-type": "text/plain"}),
        # huge header values
        lambda c: c.get(f"/s/{sid}/directory/practitioners", headers={"Authorization": "Bearer " + "A" * 60_000}),
        lambda c: c.get(f"/s/{sid}/directory/practitioners", headers=auth | {"x-padding": "p" * 60_000},
                        params={"unknown": "1"}),
        lambda c: c.get(f"/s/{sid}/directory/practitioners", headers=auth, params={"name": "n" * 8000}),
        lambda c: c.get("/admin/sessions", headers={"Authorization": "Bearer " + "B" * 60_000}),
        # unknown paths
        lambda c: c.get("/nowhere"),
        lambda c: c.get(f"/s/{sid}/nowhere"),
        lambda c: c.get(f"/s/{sid}/mss/nowhere", headers=auth),
        lambda c: c.get("/s/ses_unknown/directory/practitioners", headers=auth),
        lambda c: c.get("/prod/mss/nowhere", headers=prod),
        lambda c: c.get("/admin/nowhere", headers=adm),
        lambda c: c.get("/s/%FF%FE/mss/messages"),
        # wrong methods
        lambda c: c.delete(mss, headers=auth),
        lambda c: c.put(f"/s/{sid}/directory/practitioners", headers=auth, json={}),
        lambda c: c.get("/prod/mss/messages", headers=prod),
        lambda c: c.patch("/admin/sessions", headers=adm, json={}),
        lambda c: c.post("/health"),
        # invalid UTF-8
        lambda c: c.post(mss, content=b'{"from": "\xff\xfe"}', headers=auth | js),
        lambda c: c.post(mss, content=b"\xc3\x28\xa0\xa1", headers=auth | js),
        lambda c: c.post("/admin/sessions", content=b'{"label": "\xed\xa0\x80"}', headers=adm | js),
        lambda c: c.post(mss, content=b"from=\xff\xfe", headers=auth | {
            "content-type": "application/x-www-form-urlencoded"}),
        lambda c: c.get(f"/s/{sid}/directory/practitioners", params={"name": "%FF"}, headers=auth | {
            "x-odd": b"caf\xe9"}),
        # bodies beyond the limit, declared or not
        lambda c: c.post(mss, content=b"x" * (3 * 1024 * 1024), headers=auth | js),
        lambda c: c.post(mss, content=iter([b"{" + b" " * (3 * 1024 * 1024)]), headers=auth | js),
    ]


def test_a_burst_of_bad_requests_leaves_the_sandbox_working(http: httpx.Client, world: dict[str, Any],
                                                            sandbox_server: RunningSandbox,
                                                            admin: httpx.Client) -> None:
    s = world["session"]
    for make in bad_requests(world, sandbox_server.admin_token):
        r = make(http)
        if r.status_code < 400 and r.request.url.path.endswith("/practitioners"):
            continue  # a search for an odd name is not an error
        assert_problem(r)
    r = http.post(f"/s/{s['session_id']}/mss/messages", json=valid_message(s),
                  headers={"Authorization": f"Bearer {world['token']}"})
    assert r.status_code == 201, r.text
    r = http.get(f"/s/{s['session_id']}/directory/organisations", headers={"Authorization": f"Bearer {world['token']}"})
    assert r.status_code == 200 and len(r.json()) == len(s["fixtures"]["organisations"])
    # the trace recorded all of it, and still exports and verifies
    trace = admin.get(f"/admin/sessions/{s['session_id']}/trace")
    assert trace.status_code == 200, trace.text
    keys = KeyRing(VerifyKey.from_jwk(k) for k in http.get("/.well-known/usine-trace-keys").json()["keys"])
    verify_document(trace.json(), keys)


def test_bad_requests_in_parallel_with_good_ones(sandbox_server: RunningSandbox, world: dict[str, Any]) -> None:
    s = world["session"]
    bad = bad_requests(world, sandbox_server.admin_token)
    auth = {"Authorization": f"Bearer {world['token']}"}

    def good(c: httpx.Client) -> httpx.Response:
        return c.post(f"/s/{s['session_id']}/mss/messages", json=valid_message(s), headers=auth)

    jobs = [good if i % 3 == 0 else bad[i % len(bad)] for i in range(48)]

    def run(job: Callable[[httpx.Client], httpx.Response]) -> tuple[bool, int]:
        with httpx.Client(base_url=sandbox_server.base_url, timeout=60) as c:
            return job is good, job(c).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, jobs))
    assert all(status == 201 for is_good, status in results if is_good)
    assert all(status < 500 for _, status in results)


def test_http_level_garbage_is_refused_by_the_server_and_harmless(sandbox_server: RunningSandbox,
                                                                  http: httpx.Client) -> None:
    """Requests that are not HTTP never reach the app: uvicorn answers 400 and closes; the app keeps serving."""
    url = urlsplit(sandbox_server.base_url)
    for raw in (b"GARBAGE\r\n\r\n", b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00",
                b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"):
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(raw)
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert http.get("/health").json()["status"] == "ok"


@settings(derandomize=True, max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.binary(max_size=300),
       content_type=st.sampled_from(["application/json", "application/problem+json", "text/plain", "",
                                     "application/x-www-form-urlencoded", "application/json; charset=latin-1"]),
       where=st.sampled_from(["session", "prod"]))
def test_arbitrary_bytes_never_break_messaging(http: httpx.Client, world: dict[str, Any], body: bytes,
                                               content_type: str, where: str) -> None:
    if where == "session":
        url, token = f"/s/{world['session']['session_id']}/mss/messages", world["token"]
    else:
        url, token = "/prod/mss/messages", world["installation_token"]
    headers = {"Authorization": f"Bearer {token}"} | ({"content-type": content_type} if content_type else {})
    r = http.post(url, content=body, headers=headers)
    assert_problem(r)
