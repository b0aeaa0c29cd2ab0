"""Session isolation, the admin API's guard, and signed traces (integrity, completeness, no secrets)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from conformity.errors import SignatureError
from conformity.signing import KeyRing, VerifyKey, signer_kid, unverified_payload, verify_document
from sandbox.server import RunningSandbox
from tests.payments.builders import tampered
from tests.sandbox.helpers import login, trace_payload

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def admin_token(sandbox_server: RunningSandbox) -> str:
    return sandbox_server.admin_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == code
    return r.json()


def send(client: httpx.Client, s: dict[str, Any], token: str, subject: str) -> httpx.Response:
    fx = s["fixtures"]
    patient = fx["patients"][0]
    body = {"from": fx["practitioners"][0]["mss_address"], "to": [fx["practitioners"][1]["mss_address"]],
            "subject": subject, "body": "texte",
            "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
                             "content": base64.b64encode(b"%PDF").decode(),
                             "patient": {"ins": patient["ins"], "oid": patient["oid"]}}]}
    return client.post(s["endpoints"]["mss"] + "/messages", json=body, headers=bearer(token))


def signed_trace_of(admin: httpx.Client, s: dict[str, Any]) -> dict[str, Any]:
    """The session's trace as the sandbox signs it (a JWS)."""
    r = admin.get(f"/admin/sessions/{s['session_id']}/trace")
    assert r.status_code == 200, r.text
    return r.json()


def trace_of(admin: httpx.Client, s: dict[str, Any]) -> dict[str, Any]:
    """The session's trace (the signed trace's payload)."""
    return trace_payload(admin.get(f"/admin/sessions/{s['session_id']}/trace"))


def trusted_keys(client: httpx.Client, *, use: str) -> KeyRing:
    keys = client.get("/.well-known/usine-trace-keys").json()["keys"]
    assert keys
    if use == "jwk":
        return KeyRing(VerifyKey.from_jwk(k) for k in keys)
    return KeyRing(VerifyKey.from_pem(k["pem"]) for k in keys)


# --- isolation ---------------------------------------------------------------------------------

def test_a_token_of_session_a_is_refused_by_every_service_of_b(new_session: Callable[..., dict[str, Any]],
                                                                mint: Callable[..., str], client: httpx.Client,
                                                                admin: httpx.Client) -> None:
    a, b = new_session(seed=11, label="A"), new_session(seed=12, label="B")
    token_a = mint(a)
    assert send(client, a, token_a, "secret of A").status_code == 201
    b_box = quote(b["fixtures"]["practitioners"][1]["mss_address"])
    calls = [("GET", b["endpoints"]["directory"] + "/practitioners"),
             ("GET", b["endpoints"]["directory"] + "/addresses"),
             ("GET", b["endpoints"]["mss"] + f"/mailboxes/{b_box}/messages")]
    for method, url in calls:
        problem(client.request(method, url, headers=bearer(token_a)), 403, "token-other-session")
    problem(send(client, b, token_a, "A writes into B"), 403, "token-other-session")

    trace_b = trace_of(admin, b)
    refused = trace_b["exchanges"]
    assert [x["outcome"] for x in refused] == ["token-other-session"] * 4
    assert all(x["request"]["auth"]["kind"] == "access" and x["request"]["auth"]["session"] == "other"
               for x in refused)
    text = json.dumps(trace_b, ensure_ascii=False)
    assert a["session_id"] not in text and token_a not in text and "secret of A" not in text
    for p in a["fixtures"]["practitioners"]:
        assert p["national_id"] not in text
    # and B's refused write left nothing in B
    token_b = mint(b)
    r = client.get(b["endpoints"]["mss"] + f"/mailboxes/{b_box}/messages", headers=bearer(token_b))
    assert r.status_code == 200 and r.json() == []


def test_messages_and_mailboxes_are_scoped_to_their_session(admin: httpx.Client, mint: Callable[..., str],
                                                            client: httpx.Client) -> None:
    # the same seed gives both sessions the same directory: only the scope separates them
    a = admin.post("/admin/sessions", json={"seed": 13}).json()
    b = admin.post("/admin/sessions", json={"seed": 13}).json()
    token_a, token_b = mint(a), mint(b)
    r = send(client, a, token_a, "only in A")
    assert r.status_code == 201
    box = quote(a["fixtures"]["practitioners"][1]["mss_address"])
    assert [m["subject"] for m in client.get(a["endpoints"]["mss"] + f"/mailboxes/{box}/messages",
                                             headers=bearer(token_a)).json()] == ["only in A"]
    assert client.get(b["endpoints"]["mss"] + f"/mailboxes/{box}/messages", headers=bearer(token_b)).json() == []
    # a client-chosen message id is per session too
    body_id = "<same-id@example>"
    for s, token in ((a, token_a), (b, token_b)):
        fx = s["fixtures"]
        r = client.post(s["endpoints"]["mss"] + "/messages", headers=bearer(token), json={
            "from": fx["organisations"][0]["mss_address"], "to": [fx["organisations"][1]["mss_address"]],
            "message_id": body_id, "subject": s["session_id"]})
        assert r.status_code == 201, r.text


def test_a_session_token_cannot_read_another_trace(new_session: Callable[..., dict[str, Any]],
                                                   client: httpx.Client, admin: httpx.Client, admin_token: str) -> None:
    a, b = new_session(seed=14), new_session(seed=15)
    problem(client.get(b["endpoints"]["trace"], headers=bearer(a["credentials"]["session_token"])), 403,
            "token-other-session")
    problem(client.get(b["endpoints"]["trace"]), 401, "token-missing")
    problem(client.get(b["endpoints"]["trace"], headers=bearer(admin_token)), 401, "token-invalid")
    r = client.get(b["endpoints"]["trace"], headers=bearer(b["credentials"]["session_token"]))
    assert trace_payload(r)["session"]["id"] == b["session_id"]
    assert [x["outcome"] for x in trace_of(admin, b)["exchanges"]] == ["token-other-session", "token-missing",
                                                                        "token-invalid", "accepted"]
    assert trace_of(admin, a)["exchanges"] == []
    text = json.dumps(trace_of(admin, b))
    assert admin_token not in text and a["credentials"]["session_token"] not in text


def test_unknown_and_closed_sessions(new_session: Callable[..., dict[str, Any]], mint: Callable[..., str],
                                     client: httpx.Client, admin: httpx.Client) -> None:
    problem(client.get("/s/ses_doesnotexist/directory/practitioners"), 404, "session-unknown")
    problem(client.get("/s/ses_doesnotexist/trace"), 404, "session-unknown")
    problem(admin.get("/admin/sessions/ses_doesnotexist"), 404, "session-unknown")
    s = new_session(seed=16)
    token = mint(s)
    assert client.get(s["endpoints"]["directory"] + "/organisations", headers=bearer(token)).status_code == 200
    assert admin.post(f"/admin/sessions/{s['session_id']}/close").json()["state"] == "closed"
    problem(client.get(s["endpoints"]["directory"] + "/organisations", headers=bearer(token)), 410, "session-closed")
    problem(send(client, s, token, "late"), 410, "session-closed")
    # a harness retrying a close whose answer it lost: the session is closed, as asked (was 410 session-closed)
    again = admin.post(f"/admin/sessions/{s['session_id']}/close")
    assert (again.status_code, again.json()) == (200, {"session_id": s["session_id"], "state": "closed"}), again.text
    problem(admin.post("/admin/sessions/ses_doesnotexist/close"), 404, "session-unknown")
    # the admin still exports it, as it was closed: the requests after the close are not in it (nor ever swept
    # from under a session deleted meanwhile)
    assert trace_of(admin, s)["exchanges"][-1]["request"]["path"].endswith("/organisations")
    assert all(e["outcome"] != "session-closed" for e in trace_of(admin, s)["exchanges"])


@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/sessions"), ("POST", "/admin/sessions"),
                                              ("GET", "/admin/events"), ("GET", "/admin/installations"),
                                              ("GET", "/admin/sessions/x/trace"), ("PUT", "/admin/sessions/x/faults")])
def test_admin_api_needs_the_admin_token(client: httpx.Client, new_session: Callable[..., dict[str, Any]],
                                         method: str, path: str) -> None:
    s = new_session(seed=17)
    r = client.request(method, path, json={})
    problem(r, 401, "admin-token-missing")
    assert r.headers["www-authenticate"] == "Bearer"
    for wrong in ("wrong", s["credentials"]["session_token"], s["credentials"]["client_secret"]):
        problem(client.request(method, path, json={}, headers=bearer(wrong)), 403, "admin-token-invalid")


def test_faults_document_is_validated(new_session: Callable[..., dict[str, Any]], admin: httpx.Client) -> None:
    s = new_session(seed=18)
    url = f"/admin/sessions/{s['session_id']}/faults"
    for bad in ({"smtp": {"unavailable": 1}}, {"mss": {"explode": True}}, {"mss": {"unavailable": -1}},
                {"directory": {"unavailable": "2"}}, {"mss": 3}):
        assert problem(admin.put(url, json=bad), 422, "faults-invalid")["detail"]
    problem(admin.put(url, json=[1]), 422, "invalid-request")
    assert admin.put(url, json={"mss": {"unavailable": 2}, "directory": {"unavailable": 1}}).json()["faults"] == {
        "mss": {"unavailable": 2}, "directory": {"unavailable": 1}}
    assert admin.put(url, json={"mss": None}).json()["faults"] == {"directory": {"unavailable": 1}}
    assert admin.get("/admin/sessions/" + s["session_id"]).json()["faults"] == {"directory": {"unavailable": 1}}


# --- traces ------------------------------------------------------------------------------------

@pytest.fixture
def busy_session(new_session: Callable[..., dict[str, Any]], mint: Callable[..., str], client: httpx.Client,
                 admin: httpx.Client, admin_token: str) -> tuple[dict[str, Any], str]:
    """A session with notes, accepted and refused exchanges, and secrets sent where they must not be kept."""
    s = new_session(seed=19, label="busy")
    token = mint(s)
    creds = s["credentials"]
    sid = s["session_id"]
    admin.post(f"/admin/sessions/{sid}/notes", json={"kind": "step.start", "data": {"n": 1}})
    client.get(s["endpoints"]["directory"] + "/practitioners", headers=bearer(token))
    admin.post(f"/admin/sessions/{sid}/notes", json={"kind": "step.middle", "data": {"n": 2}})
    send(client, s, token, "hello")
    send(client, s, token, f"leaky subject {creds['session_token']} {creds['client_secret']} {token}")
    client.get(s["endpoints"]["directory"] + "/organisations", params={"access_token": token},
               headers=bearer(token))
    client.post(s["endpoints"]["idp"] + "/token", headers={"Authorization": "Basic " + base64.b64encode(
        f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()},
        data={"grant_type": "authorization_code", "code": "abc", "client_id": creds["client_id"],
              "client_secret": creds["client_secret"]})
    client.post(s["endpoints"]["mss"] + "/messages", headers=bearer(token),
                json={"token": token, "admin": admin_token, "access_token": "x" * 20})
    client.get(s["endpoints"]["trace"], headers=bearer(creds["session_token"]))
    admin.post(f"/admin/sessions/{sid}/notes", json={"kind": "step.end", "data": {"n": 3}})
    return s, token


def test_trace_signature_verifies_with_the_published_keys(busy_session: tuple[dict[str, Any], str],
                                                          client: httpx.Client, admin: httpx.Client) -> None:
    s, _ = busy_session
    trace = signed_trace_of(admin, s)
    for use in ("jwk", "pem"):
        keys = trusted_keys(client, use=use)
        body = verify_document(trace, keys)
        assert body["format"] == "usine.trace/1" and body["session"]["id"] == s["session_id"]
        assert signer_kid(trace) in keys and body["sandbox"]["key_id"] == signer_kid(trace)
    own = client.get(s["endpoints"]["trace"], headers=bearer(s["credentials"]["session_token"])).json()
    verify_document(own, trusted_keys(client, use="jwk"))


def test_an_edited_trace_no_longer_verifies(busy_session: tuple[dict[str, Any], str], client: httpx.Client,
                                            admin: httpx.Client) -> None:
    s, _ = busy_session
    signed = signed_trace_of(admin, s)
    trace = unverified_payload(signed)
    keys = trusted_keys(client, use="jwk")
    edits: list[Callable[[dict[str, Any]], None]] = [
        lambda t: t["exchanges"][1].update(outcome="message-accepted"),
        lambda t: t["exchanges"][1]["response"].update(status=503),
        lambda t: t["exchanges"].pop(2),
        lambda t: t["session"].update(seed=0),
    ]
    for edit in edits:
        edited = copy.deepcopy(trace)
        edit(edited)
        with pytest.raises(SignatureError):
            verify_document(tampered(signed, **edited), keys)
    with pytest.raises(SignatureError):
        verify_document(signed, KeyRing())


def test_every_exchange_is_complete_and_notes_are_in_order(busy_session: tuple[dict[str, Any], str],
                                                           admin: httpx.Client) -> None:
    s, _ = busy_session
    exchanges = trace_of(admin, s)["exchanges"]
    assert [x["seq"] for x in exchanges] == list(range(1, len(exchanges) + 1))
    notes = [x for x in exchanges if x["kind"] == "note"]
    assert [(n["note"], n["data"]) for n in notes] == [("step.start", {"n": 1}), ("step.middle", {"n": 2}),
                                                        ("step.end", {"n": 3})]
    kinds = [x["kind"] if x["kind"] == "note" else x["service"] for x in exchanges]
    assert kinds == ["note", "directory", "note", "mss", "mss", "directory", "idp", "mss", "trace", "note"]
    for x in exchanges:
        if x["kind"] != "http":
            continue
        assert {"request", "response", "outcome", "duration_ms"} <= set(x)
        assert {"method", "path", "query", "headers", "auth", "body"} <= set(x["request"])
        assert {"status", "headers", "body"} <= set(x["response"])
        assert isinstance(x["outcome"], str) and x["outcome"]
        assert isinstance(x["duration_ms"], (int, float)) and x["duration_ms"] >= 0
    assert exchanges[3]["outcome"] == "message-accepted"
    assert exchanges[8]["response"]["body"] == {"omitted": "trace-export"}  # a trace never swallows itself


def test_no_secret_ever_appears_in_a_trace(busy_session: tuple[dict[str, Any], str], admin: httpx.Client,
                                           client: httpx.Client, admin_token: str) -> None:
    s, token = busy_session
    creds = s["credentials"]
    for trace in (trace_of(admin, s),
                  trace_payload(client.get(s["endpoints"]["trace"], headers=bearer(creds["session_token"])))):
        text = json.dumps(trace, ensure_ascii=False)
        for name, secret in (("client_secret", creds["client_secret"]), ("session token", creds["session_token"]),
                             ("access token", token), ("admin token", admin_token)):
            assert secret not in text, f"the {name} leaked into the trace"
        assert "x" * 20 not in text  # an access_token member, whatever its value
    exchanges = trace_of(admin, s)["exchanges"]
    idp = next(x for x in exchanges if x.get("service") == "idp")
    assert idp["request"]["auth"] == {"scheme": "Basic", "client_id": creds["client_id"]}
    assert idp["request"]["body"]["form"]["client_id"] == [creds["client_id"]]  # what is not secret stays
    assert idp["request"]["body"]["form"]["client_secret"][0].startswith("[redacted sha256:")


def test_tokens_issued_by_the_identity_provider_stay_out_of_the_trace(new_session: Callable[..., dict[str, Any]],
                                                                       client: httpx.Client,
                                                                       admin: httpx.Client) -> None:
    s = new_session(seed=20)
    creds = s["credentials"]
    access_token = login(client, s)["access_token"]
    assert client.get(s["endpoints"]["directory"] + "/practitioners", headers=bearer(access_token)).status_code == 200
    assert send(client, s, access_token, "with a real token").status_code == 201

    trace = trace_of(admin, s)
    text = json.dumps(trace, ensure_ascii=False)
    for secret in (access_token, creds["client_secret"], creds["session_token"]):
        assert secret not in text
    issued = next(x for x in trace["exchanges"] if x.get("outcome") == "token-issued")
    token_answer = issued["response"]["body"]["json"]
    assert token_answer["access_token"].startswith("[redacted sha256:")
    used = next(x for x in trace["exchanges"] if x.get("service") == "directory")
    assert token_answer["access_token"] == f"[redacted sha256:{used['request']['auth']['token_sha256']}]"
