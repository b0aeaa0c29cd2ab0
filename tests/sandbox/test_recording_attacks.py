"""The recording and the trace under attack: secrets sent where no rule names them, requests built to be misrecorded,
credentials past their life."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox.credentials import secret_hash
from sandbox.server import RunningSandbox
from tests.sandbox.helpers import login
from tests.sandbox.test_sessions import bearer, problem, trace_of


def test_issued_tokens_and_basic_credentials_sent_outside_authorization_stay_out_of_the_trace(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client, admin: httpx.Client,
        mint: Callable[..., str]) -> None:
    """The access and ID tokens the provider signs are JWTs, not the 32/43-character runs the recording looks up by
    hash, and a Basic credential is base64: sent anywhere but the request's own Authorization header (a header of the
    software's, a JSON member, a query parameter no rule names), they were recorded in clear in the trace."""
    s = new_session(seed=61)
    creds = s["credentials"]
    tokens = login(client, s)
    access, id_token = tokens["access_token"], tokens["id_token"]
    basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    other = mint(s)  # the request's own credential: another access token
    directory = s["endpoints"]["directory"] + "/practitioners"
    client.get(directory, headers=bearer(other) | {"X-Forwarded-Access-Token": access, "X-Id": id_token,
                                                   "X-Upstream-Authorization": f"Basic {basic}"})
    client.get(directory, params={"hint": access, "id_token_hint": id_token, "credential": basic})
    client.post(s["endpoints"]["mss"] + "/messages", headers=bearer(other),
                json={"subject": f"see {access}", "nested": [{"jwt": id_token, "basic": basic}]})

    trace = trace_of(admin, s)
    text = json.dumps(trace, ensure_ascii=False)
    for name, secret in (("access token", access), ("ID token", id_token), ("Basic credential", basic),
                         ("client secret", creds["client_secret"])):
        assert secret not in text, f"the {name} leaked into the trace"
    first = next(x for x in trace["exchanges"] if x.get("kind") == "http" and x["request"]["headers"].get("x-id"))
    # redacted as the token answer's own members are: the checks still tell which token went where by its hash
    assert first["request"]["headers"]["x-forwarded-access-token"] == f"[redacted sha256:{secret_hash(access)[:16]}]"
    assert first["request"]["headers"]["x-id"] == f"[redacted sha256:{secret_hash(id_token)[:16]}]"


def test_a_repeated_authorization_header_is_refused_and_recorded_as_sent(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client, admin: httpx.Client,
        mint: Callable[..., str]) -> None:
    """With two Authorization headers the services authenticated the first (Starlette's ``headers.get``) while a
    reader of the trace could take either: which credential authenticated? Refused 400 ``header-repeated``, whichever
    comes first; the trace describes the first credential and says a second came along. Other repeated headers (a
    second User-Agent) are served, and recorded as sent, every value."""
    s = new_session(seed=62)
    token = mint(s)
    url = httpx.URL(s["endpoints"]["directory"] + "/practitioners")
    for first, second in ((f"Bearer {token}", "Bearer forged"), ("Bearer forged", f"Bearer {token}")):
        request = httpx.Request("GET", url, headers=[
            ("Host", url.netloc.decode()), ("Authorization", first), ("Authorization", second)])
        problem(client.send(request), 400, "header-repeated")
    request = httpx.Request("GET", url, headers=[
        ("Host", url.netloc.decode()), ("Authorization", f"Bearer {token}"), ("User-Agent", "first/1"),
        ("User-Agent", "second/2")])
    assert client.send(request).status_code == 200

    valid_first, forged_first, served = [x for x in trace_of(admin, s)["exchanges"] if x.get("kind") == "http"][-3:]
    assert valid_first["response"]["status"] == forged_first["response"]["status"] == 400
    assert valid_first["request"]["auth"]["token_sha256"] == secret_hash(token)[:16]
    assert valid_first["request"]["auth"]["repeated"] == 2  # the trace says a second credential came along
    assert forged_first["request"]["auth"]["kind"] == "unknown"
    assert forged_first["request"]["auth"]["token_sha256"] == secret_hash("forged")[:16]
    assert served["request"]["headers"]["user-agent"] == "first/1, second/2"


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


@pytest.mark.parametrize("depth", [150, 600])
def test_a_deeply_nested_json_body_is_answered_and_recorded_in_a_readable_trace(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client, admin: httpx.Client,
        mint: Callable[..., str], depth: int) -> None:
    """A JSON body nested a few hundred levels deep parses, but redacting it (recursive) overflowed the stack as the
    exchange was recorded: no answer, and no record of the request — software could keep a request out of its trace.
    Nested past the depth the agency reads a trace to (``conformity.jsonio.MAX_DEPTH``), it was recorded, and made
    the whole trace unreadable. Such a body is recorded as its text."""
    s = new_session(seed=64)
    token = mint(s)
    body = '{"subject": ' + "[" * depth + '"deep"' + "]" * depth + "}"
    r = client.post(s["endpoints"]["mss"] + "/messages", content=body,
                    headers=bearer(token) | {"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    last = [x for x in trace_of(admin, s)["exchanges"] if x.get("kind") == "http"][-1]  # read as the agency reads it
    assert last["request"]["body"] == {"text": body}
    assert last["response"]["status"] == 422 and last["request"]["auth"]["kind"] == "access"


@pytest.mark.parametrize("depth", [150, 600])
def test_a_note_nested_deeper_than_a_trace_holds_is_refused(new_session: Callable[..., dict[str, Any]],
                                                            admin: httpx.Client, depth: int) -> None:
    """A note's data went into the trace whatever its depth: 150 levels made the trace unreadable where the agency
    reads it, 600 overflowed the stack while its secrets were redacted (500)."""
    s = new_session(seed=65)
    raw = '{"kind": "step.start", "data": {"x": ' + "[" * depth + "1" + "]" * depth + "}}"
    r = admin.post(f"/admin/sessions/{s['session_id']}/notes", content=raw, headers={"Content-Type": "application/json"})
    problem(r, 422, "invalid-request")
    assert trace_of(admin, s)["exchanges"] == []


def test_a_request_whose_body_never_completed_is_not_acted_on(new_session: Callable[..., dict[str, Any]],
                                                               client: httpx.Client, admin: httpx.Client,
                                                               mint: Callable[..., str]) -> None:
    """The recording read the body until the connection closed and handed what had come to the service as the whole
    body: a message whose Content-Length announced more than was sent, the connection then closed, was delivered (and
    recorded as sent and accepted)."""
    s = new_session(seed=67)
    token = mint(s)
    fx = s["fixtures"]
    box = fx["practitioners"][1]["mss_address"]
    body = json.dumps({"from": fx["practitioners"][0]["mss_address"], "to": [box], "subject": "half-sent"}).encode()
    url = httpx.URL(s["endpoints"]["mss"] + "/messages")
    with socket.create_connection((url.host, url.port)) as sock:
        sock.sendall(f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n".encode() + body)
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while not (exchanges := [x for x in trace_of(admin, s)["exchanges"] if x.get("kind") == "http"]):
        assert time.monotonic() < deadline, "the half-sent request was never recorded"
        time.sleep(0.05)
    assert exchanges[0]["outcome"] == "request-incomplete", exchanges[0]
    assert exchanges[0]["request"]["body"] == {"omitted": "request-incomplete"}
    r = client.get(s["endpoints"]["mss"] + "/mailboxes/" + quote(box) + "/messages", headers=bearer(token))
    assert r.status_code == 200 and r.json() == []
