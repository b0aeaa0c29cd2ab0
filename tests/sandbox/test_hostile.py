"""Hostile input to the patient identity and document services: refused, recorded, and harmless.

Every request here is refused with its status and problem code, the refusal is the outcome of the
exchange in the session trace, and the server keeps serving valid requests afterwards.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.packs.health import samples
from sandbox.server import RunningSandbox
from tests.sandbox.helpers import trace_payload

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [
 <!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd">
 <!ENTITY % local "<!ENTITY exfil SYSTEM 'file:///etc/hostname'>">
 %remote; %local;
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&exfil;</title></ClinicalDocument>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument SYSTEM "http://127.0.0.1:9/cda.dtd">
<ClinicalDocument xmlns="urn:hl7-org:v3"/>"""

XINCLUDE = b"""<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xi="http://www.w3.org/2001/XInclude">
<title><xi:include href="file:///etc/passwd" parse="text"/></title></ClinicalDocument>"""

TOO_DEEP = (b'<ClinicalDocument xmlns="urn:hl7-org:v3">' + b"<component>" * 100 + b"</component>" * 100
            + b"</ClinicalDocument>")
MALFORMED = b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>unclosed</ClinicalDocument>'


@dataclass
class Target:
    """One session, its tokens, and a client that checks refusals against the session trace."""

    http: httpx.Client
    admin: httpx.Client
    session: dict[str, Any]
    token: str
    other_session_token: str
    expired_token: str

    @property
    def sid(self) -> str:
        return self.session["session_id"]

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def submission(self, document: bytes | None = None) -> dict[str, Any]:
        body = samples.session_submission(self.session["fixtures"])
        if document is not None:
            body["document"] = base64.b64encode(document).decode()
            body["metadata"] |= {"hash": hashlib.sha1(document).hexdigest(), "size": len(document)}
        return body

    def last_outcome(self) -> str:
        trace = trace_payload(self.admin.get(f"/admin/sessions/{self.sid}/trace"))
        return trace["exchanges"][-1]["outcome"]

    def refused(self, r: httpx.Response, status: int, code: str) -> dict[str, Any]:
        assert r.status_code == status, r.text[:500]
        body = r.json()
        assert body["code"] == code, body
        assert r.headers["content-type"].startswith("application/problem+json")
        assert self.last_outcome() == code
        return body


@pytest.fixture(scope="module")
def target(sandbox_server: RunningSandbox, admin: httpx.Client) -> Iterator[Target]:
    store = sandbox_server.server.config.app.state.store
    sessions = [admin.post("/admin/sessions", json={"seed": seed}).json() for seed in (666, 667)]
    national_id = sessions[0]["fixtures"]["practitioners"][0]["national_id"]
    token = samples.issue_access_token(store, sessions[0]["session_id"], national_id)
    other = samples.issue_access_token(store, sessions[1]["session_id"], national_id)
    expired = samples.issue_access_token(store, sessions[0]["session_id"], national_id, ttl=-1)
    with httpx.Client(base_url=sandbox_server.base_url, timeout=60) as http:
        yield Target(http, admin, sessions[0], token, other, expired)


def post_doc(t: Target, document: bytes) -> httpx.Response:
    return t.http.post(f"/s/{t.sid}/dmp/documents", json=t.submission(document), headers=t.auth())


# ------------------------------------------------------------------------------------------ XML

@pytest.mark.parametrize(("name", "document", "status", "code"), [
    ("xxe", XXE, 400, "xml-forbidden"),
    ("xxe-utf16", XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
     400, "xml-forbidden"),
    ("billion-laughs", BILLION_LAUGHS, 400, "xml-forbidden"),
    ("parameter-entity", PARAMETER_ENTITY, 400, "xml-forbidden"),
    ("external-dtd", EXTERNAL_DTD, 400, "xml-forbidden"),
    ("too-deep", TOO_DEEP, 400, "xml-too-deep"),
    ("malformed", MALFORMED, 400, "xml-malformed"),
    ("not-xml", b"\x00\x01binary", 400, "xml-malformed"),
])
def test_hostile_xml_refused(target: Target, name: str, document: bytes, status: int, code: str) -> None:
    body = target.refused(post_doc(target, document), status, code)
    assert "root:" not in str(body)


def test_xinclude_is_not_processed(target: Target) -> None:
    body = target.refused(post_doc(target, XINCLUDE), 422, "document-invalid")
    assert "root:" not in str(body)


def test_xml_larger_than_the_xml_limit(target: Target, sandbox_server: RunningSandbox) -> None:
    limit = sandbox_server.config.max_xml_bytes
    padding = b"<!-- " + b"x" * limit + b" -->"
    body = target.refused(post_doc(target, MALFORMED.replace(b"<title>", padding + b"<title>")), 413, "xml-too-large")
    assert body["limit"] == limit


def test_body_larger_than_the_body_limit(target: Target, sandbox_server: RunningSandbox) -> None:
    size = sandbox_server.config.max_body_bytes + 1
    r = target.http.post(f"/s/{target.sid}/dmp/documents", content=b"{" + b" " * size + b"}",
                         headers=target.auth() | {"content-type": "application/json"})
    target.refused(r, 413, "body-too-large")


# ------------------------------------------------------------------------------------------ HTTP

def test_wrong_content_types(target: Target) -> None:
    doc = base64.b64decode(target.submission()["document"])
    url = f"/s/{target.sid}/dmp/documents"
    target.refused(target.http.post(url, content=doc, headers=target.auth() | {"content-type": "application/xml"}),
                   415, "unsupported-media-type")
    target.refused(target.http.post(url, data={"document": "x"}, headers=target.auth()), 415, "unsupported-media-type")
    target.refused(target.http.post(url, content=b"{}", headers=target.auth()), 415, "unsupported-media-type")


@pytest.mark.parametrize(("name", "raw", "status", "code"), [
    ("truncated", b'{"metadata": {', 400, "json-malformed"),
    ("not-utf8", b'{"a": "\xff"}', 400, "json-malformed"),
    ("nested", b"[" * 200_000 + b"]" * 200_000, 400, "json-malformed"),
    ("array", b"[]", 422, "invalid-request"),
    ("empty-object", b"{}", 422, "invalid-request"),
])
def test_malformed_json(target: Target, name: str, raw: bytes, status: int, code: str) -> None:
    r = target.http.post(f"/s/{target.sid}/dmp/documents", content=raw,
                         headers=target.auth() | {"content-type": "application/json"})
    target.refused(r, status, code)


@pytest.mark.parametrize(("name", "raw", "media", "status", "code"), [
    ("truncated", b'{"birth_name": ', "application/json", 400, "json-malformed"),
    ("nested", b"[" * 200_000 + b"]" * 200_000, "application/json", 400, "json-malformed"),
    ("text", b'{"birth_name": "X"}', "text/plain", 415, "unsupported-media-type"),
    ("form", b"birth_name=X", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
    ("array", b"[]", "application/json", 422, "invalid-request"),
])
def test_malformed_bodies_to_the_identity_service(target: Target, name: str, raw: bytes, media: str, status: int,
                                                  code: str) -> None:
    r = target.http.post(f"/s/{target.sid}/insi/lookup", content=raw, headers=target.auth() | {"content-type": media})
    target.refused(r, status, code)


TOKENS: list[tuple[str, Callable[[Target], dict[str, str]], int, str]] = [
    ("missing", lambda t: {}, 401, "token-missing"),
    ("forged", lambda t: t.auth("forged-" + t.token[7:]), 401, "token-invalid"),
    ("expired", lambda t: t.auth(t.expired_token), 401, "token-expired"),
    ("other-session", lambda t: t.auth(t.other_session_token), 403, "token-other-session"),
    ("session-token", lambda t: t.auth(t.session["credentials"]["session_token"]), 401, "token-wrong-kind"),
    ("basic", lambda t: {"Authorization": "Basic dXNlcjpwYXNz"}, 401, "token-missing"),
]


@pytest.mark.parametrize(("name", "headers", "status", "code"), TOKENS, ids=[t[0] for t in TOKENS])
def test_bad_tokens_on_the_document_service(target: Target, name: str, headers: Callable[[Target], dict[str, str]],
                                            status: int, code: str) -> None:
    r = target.http.post(f"/s/{target.sid}/dmp/documents", json=target.submission(), headers=headers(target))
    target.refused(r, status, code)


@pytest.mark.parametrize(("name", "headers", "status", "code"), TOKENS, ids=[t[0] for t in TOKENS])
def test_bad_tokens_on_the_identity_service(target: Target, name: str, headers: Callable[[Target], dict[str, str]],
                                            status: int, code: str) -> None:
    traits = target.session["fixtures"]["patients"][0]["registered_traits"]
    target.refused(target.http.post(f"/s/{target.sid}/insi/lookup", json=traits, headers=headers(target)), status, code)


def test_server_keeps_serving_afterwards(target: Target) -> None:
    """After a burst of every kind of hostile request, valid requests still succeed (order-independent)."""
    url = f"/s/{target.sid}/dmp/documents"
    burst = [
        post_doc(target, XXE), post_doc(target, BILLION_LAUGHS), post_doc(target, TOO_DEEP),
        post_doc(target, MALFORMED),
        target.http.post(url, content=b"x" * (3 * 1024 * 1024), headers=target.auth()),
        target.http.post(url, content=b"<a/>", headers=target.auth() | {"content-type": "application/xml"}),
        target.http.post(url, content=b'{"metadata": ', headers=target.auth() | {"content-type": "application/json"}),
        target.http.post(url, json=target.submission(), headers=target.auth(target.expired_token)),
        target.http.post(url, json=target.submission(), headers=target.auth(target.other_session_token)),
        target.http.post(url, json=target.submission(), headers=target.auth("forged-token")),
    ]
    assert all(400 <= r.status_code < 500 for r in burst), [r.status_code for r in burst]
    body = target.submission()
    r = target.http.post(url, json=body, headers=target.auth())
    assert r.status_code == 201, r.text
    assert target.last_outcome() == "document-accepted"
    traits = target.session["fixtures"]["patients"][0]["registered_traits"]
    r = target.http.post(f"/s/{target.sid}/insi/lookup", json=traits, headers=target.auth())
    assert r.status_code == 200 and r.json()["outcome"] == "match"
    outcomes = [e["outcome"] for e in trace_payload(target.admin.get(f"/admin/sessions/{target.sid}/trace"))["exchanges"]]
    assert {"xml-forbidden", "xml-too-deep", "body-too-large", "unsupported-media-type",
            "json-malformed", "token-expired", "token-other-session", "token-invalid"} <= set(outcomes)
