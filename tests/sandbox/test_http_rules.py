"""RFC 9110 on every router: one rule for bad input (415 / 400 / 422), 405 with Allow, strict admin models."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conformity.signing import unverified_payload
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.packs.health.samples import issue_access_token
from sandbox.sessions import create_session

ADMIN = "http-rules-admin"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


@pytest.fixture(scope="module")
def app() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        yield create_app(SandboxConfig(data_dir=Path(tmp), admin_token=ADMIN))


@pytest.fixture(scope="module")
def http(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def doc(http: TestClient) -> dict[str, Any]:
    return http.get("/openapi.json").json()


def headers_for(app: Any, http: TestClient, path: str) -> tuple[str, dict[str, str]]:
    """The path with a real session in it, and the credentials its operation needs."""
    session = create_session(app.state.store, "http://testserver", seed=1)
    fiscal = session["fixtures"]["homes"][0]["fiscal_number"]
    url = (path.replace("{session_id}", session["id"]).replace("{unique_id}", "x").replace("{patient_id}", "x")
           .replace("{fiscal}", fiscal))
    if path.startswith("/admin/"):
        return url, {"Authorization": f"Bearer {ADMIN}"}
    if path.startswith("/prod/"):
        # an installation of a category whose label covers what the path receives (a housing one for the housing
        # services: a diagnostician files DPEs, a contractor deposits quotes and works, an adviser transfers)
        wave, category = ("2026-W1", "GP") if not path.startswith(("/prod/observatory/", "/prod/dataspace/")) else \
            ("2026-W3", "DIAGNOSTICIAN" if "/observatory/" in path else "ADVISER" if path.endswith("/transfers")
             else "CONTRACTOR")
        r = http.post("/admin/installations", headers={"Authorization": f"Bearer {ADMIN}"}, json={
            "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme", "version": "1.0"},
            "site": {"id": "750100011", "size": "M"}, "wave": wave, "category": category})
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        if "{fiscal}" in path:  # a home access carries a consent the household granted to this installation
            consent = http.post("/prod/dataspace/consents", headers=auth, json={
                "household": fiscal, "scope": ["quote", "works", "consumption"], "transfer_consumption": True,
                "purpose": "HTTP rules", "expires": "2099-12-31"})
            assert consent.status_code == 201, consent.text
            auth["Consent-Id"] = consent.json()["consent_id"]
        return url, auth
    token = issue_access_token(app.state.store, session["id"], session["fixtures"]["practitioners"][0]["national_id"])
    auth = {"Authorization": f"Bearer {token}"}
    if "/dataspace/homes/" in path:  # a home access carries a consent the household granted for that home
        consent = http.post(url.split("/dataspace/")[0] + "/dataspace/consents", headers=auth, json={
            "household": fiscal, "scope": ["dpe", "quote", "works", "consumption"], "transfer_consumption": True,
            "purpose": "HTTP rules", "expires": "2099-12-31"})
        assert consent.status_code == 201, consent.text
        auth["Consent-Id"] = consent.json()["consent_id"]
    return url, auth


def json_operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, item in doc["paths"].items() for method, op in item.items()
                  if "application/json" in op.get("requestBody", {}).get("content", {}))


def test_every_json_body_operation_is_listed(doc: dict[str, Any]) -> None:
    ops = json_operations(doc)
    # admin (6: harness tokens, installations, runs, sessions, notes, faults), insi, dmp (2), mss, the data space
    # (consents, quotes, works, transfers) and the production role (6: dmp, mss, the data space's consents, quotes,
    # works, transfers)
    assert len(ops) == 20, ops


@pytest.mark.parametrize("index", range(20))
def test_one_rule_for_bad_input_on_every_router(index: int, app: Any, http: TestClient, doc: dict[str, Any]) -> None:
    """415 for another media type, 400 for a body that is not JSON, 422 for JSON that breaks the schema."""
    method, path = json_operations(doc)[index]
    url, auth = headers_for(app, http, path)
    cases = [(b"name=x", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
             (b"{}", "text/plain", 415, "unsupported-media-type"),
             (b'{"truncated": ', "application/json", 400, "json-malformed"),
             (b'{"a": "\xff"}', "application/json", 400, "json-malformed"),
             (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "json-malformed"),
             (b"true", "application/json", 422, "invalid-request"),
             (b'["a list"]', "application/json", 422, "invalid-request")]
    deposit = {"quotes": "quote-invalid", "works": "works-invalid"}.get(path.rsplit("/", 1)[1])
    for body, media, status, code in cases:
        code = deposit if deposit and code == "invalid-request" else code  # a harmonised format's own 422 code
        r = http.request(method, url, content=body, headers=auth | {"Content-Type": media})
        assert (r.status_code, r.json()["code"]) == (status, code), (method, path, media, body[:20], r.text[:300])
        assert r.headers["content-type"] == "application/problem+json"
    if path != "/admin/sessions/{session_id}/faults":  # a faults document is an open map, checked by its own rule
        r = http.request(method, url, json={"unknown_member": 1}, headers=auth)
        assert r.status_code == 422, (method, path, r.text[:300])


def test_every_path_answers_405_with_allow_listing_its_methods(app: Any, http: TestClient,
                                                               doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        declared = {m.upper() for m in item}
        url, auth = headers_for(app, http, path)
        for method in sorted(set(METHODS) - declared):
            r = http.request(method, url, headers=auth)
            assert r.status_code == 405, (method, path, r.status_code)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            assert allowed == declared | ({"HEAD"} if "GET" in declared else set()), (method, path, allowed)
            assert r.json()["code"] == "method-not-allowed"


@pytest.mark.parametrize("body", [{"fixture_options": {"patients": "3"}}, {"seed": "1"}, {"seed": True}, {"label": 5},
                                  {"redirect_uris": "http://x"}, {"id_token_signed_response_alg": "HS256"}, True,
                                  [], "x"])
def test_admin_request_models_are_strict(body: Any, http: TestClient) -> None:
    r = http.post("/admin/sessions", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid-request"), r.text


def test_strict_models_still_take_well_typed_bodies(http: TestClient) -> None:
    r = http.post("/admin/sessions", json={"pack": "health", "fixture_options": {"patients": 3}, "seed": 2, "label": "x"},
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 201 and len(r.json()["fixtures"]["patients"]) >= 3
    r = http.post("/admin/harness-tokens", json={"vendor_id": "acme", "software_id": "ehr", "days": "9"},
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 422


def test_query_parameters_break_a_rule_422(app: Any, http: TestClient) -> None:
    url, auth = headers_for(app, http, "/admin/events")
    assert http.get(url + "?after=abc", headers=auth).status_code == 422
    url, auth = headers_for(app, http, "/s/{session_id}/directory/practitioners")
    assert http.get(url + "?nmae=x", headers=auth).json()["code"] == "filter-unknown"


UNSIGNABLE = {"nan": b"NaN", "infinity": b"-Infinity", "integer-beyond-2-pow-53": b"123456789012345678901234567890"}


@pytest.mark.parametrize("value", sorted(UNSIGNABLE))
def test_a_note_canonical_json_cannot_hold_is_refused_and_the_trace_stays_signable(
        value: str, app: Any, http: TestClient) -> None:
    """Python's JSON reads NaN, infinities and any integer; a signed trace holds none of them: the note is refused
    (422), and the session's trace still exports (it answered 500 for ever after such a note)."""
    url, auth = headers_for(app, http, "/admin/sessions/{session_id}/notes")
    body = b'{"kind": "step", "data": {"value": ' + UNSIGNABLE[value] + b"}}"
    r = http.post(url, content=body, headers=auth | {"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid-request"), r.text
    assert "canonicalised" in r.text
    assert http.post(url, json={"kind": "step", "data": {"value": 1.5}}, headers=auth).status_code == 201
    trace = http.get(url.removesuffix("/notes") + "/trace", headers=auth)
    assert trace.status_code == 200, trace.text
    assert trace.json().keys() == {"protected", "payload", "signature"}


def test_a_harness_cannot_write_the_sandboxs_own_notes(app: Any, http: TestClient) -> None:
    """sandbox.faults (and any sandbox.* note) is what the sandbox records of a session: a harness note of that name
    would let a patched harness claim faults it never set."""
    url, auth = headers_for(app, http, "/admin/sessions/{session_id}/notes")
    r = http.post(url, json={"kind": "sandbox.faults", "data": {"set": {"directory": {"max_age": 0}}}}, headers=auth)
    assert r.status_code == 422 and "the sandbox's own record" in r.text, r.text
    faults = url.removesuffix("/notes") + "/faults"
    assert http.put(faults, json={"directory": {"max_age": 0}}, headers=auth).status_code == 200
    trace = http.get(url.removesuffix("/notes") + "/trace", headers=auth).json()
    from conformity.signing import unverified_payload

    [note] = [e for e in unverified_payload(trace)["exchanges"] if e.get("note") == "sandbox.faults"]
    assert note["data"] == {"set": {"directory": {"max_age": 0}}, "faults": {"directory": {"max_age": 0}}}


def quote(value: bytes, quote_id: str) -> bytes:
    """A harmonised quote valid against its schema, one free-form member holding ``value``."""
    import json

    doc = {"format": "usine.housing.quote/1", "quote_id": quote_id, "issued": "2026-01-01", "valid_until": "2026-03-01",
           "contractor": {"siret": "12345678901234", "name": "Isol'Est"}, "home": {"fiscal_number": "010101010101"},
           "gestes": [{"code": "ITE", "label": "isolation", "quantity": 1, "unit": "m2", "unit_price_ht": 1,
                       "vat_rate": 20, "total_ht": 1, "performance": {"r": "VALUE"}}],
           "total_ht": 1, "total_vat": 0.2, "total_ttc": 1.2, "mentions": {}}
    return json.dumps(doc).replace('"VALUE"', value.decode()).encode()


@pytest.mark.parametrize("value", sorted(UNSIGNABLE))
def test_a_deposit_canonical_json_cannot_hold_is_refused_not_a_server_error(
        value: str, app: Any, http: TestClient) -> None:
    """A deposit's identity is the SHA-256 of its canonical JSON: NaN or 2**100 in a free-form member is a 422, not
    a 500 (the schema alone let it through)."""
    url, auth = headers_for(app, http, "/prod/dataspace/homes/{fiscal}/quotes")
    url = url.rsplit("/homes/", 1)[0] + "/homes/010101010101/quotes"  # the quote's home, under its own consent
    consent = http.post("/prod/dataspace/consents", headers=auth, json={
        "household": "010101010101", "scope": ["quote"], "purpose": "HTTP rules", "expires": "2099-12-31"})
    auth |= {"Consent-Id": consent.json()["consent_id"], "Content-Type": "application/json"}
    r = http.post(url, content=quote(UNSIGNABLE[value], f"Q-{value}"), headers=auth)
    assert (r.status_code, r.json()["code"]) == (422, "quote-invalid"), r.text
    assert "canonicalised" in r.json()["errors"][0]["message"]
    assert http.post(url, content=quote(b"2.5", f"Q-{value}"), headers=auth).status_code == 201


def test_fixture_options_are_bounded(http: TestClient) -> None:
    """A session asking for a billion patients is refused at once (it held a worker generating them)."""
    r = http.post("/admin/sessions", json={"fixture_options": {"patients": 10**9}},
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert (r.status_code, r.json()["code"]) == (422, "fixture-options-invalid"), r.text
    assert "between 1 and 1000" in r.json()["detail"]


SERVICE_JSON_OPERATIONS = 14  # every JSON body operation but the admin API's six


@pytest.mark.parametrize("index", range(SERVICE_JSON_OPERATIONS))
def test_a_member_named_twice_is_refused_on_every_service(index: int, app: Any, http: TestClient,
                                                           doc: dict[str, Any]) -> None:
    """``{"household": A, "household": B}`` was read last-one-wins: the service acted on B while a check reading the
    recorded body with another parser (or a reviewer) may see A. Refused 400 ``duplicate-member``, at any depth,
    before any schema rule; the refusal is in the session's trace."""
    ops = [op for op in json_operations(doc) if not op[1].startswith("/admin/")]
    assert len(ops) == SERVICE_JSON_OPERATIONS, ops
    method, path = ops[index]
    url, auth = headers_for(app, http, path)
    for body in (b'{"purpose": "a", "purpose": "b"}', b'{"a": [{"k": 1, "k\\u0000": 2, "k": 3}]}',
                 b'{"at": "12:00", "at" : "13:00:00"}'):
        r = http.request(method, url, content=body, headers=auth | {"Content-Type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (400, "duplicate-member"), (method, path, body, r.text[:300])
        assert r.headers["content-type"] == "application/problem+json"
    if path.startswith("/s/"):
        session_id = url.split("/")[2]
        trace = http.get(f"/admin/sessions/{session_id}/trace", headers={"Authorization": f"Bearer {ADMIN}"}).json()
        refused = [e for e in unverified_payload(trace)["exchanges"]
                   if e.get("response", {}).get("body", {}).get("json", {}).get("code") == "duplicate-member"]
        assert len(refused) == 3, unverified_payload(trace)["exchanges"]
        # recorded as sent, both values (read as JSON, it would show one of them: the last)
        assert refused[0]["request"]["body"] == {"text": '{"purpose": "a", "purpose": "b"}'}, refused[0]["request"]


@pytest.mark.parametrize("path, query", [
    ("/s/{session_id}/dataspace/homes/{fiscal}/documents", "kind=dpe&kind=quote"),
    ("/s/{session_id}/geocoder/search", "q=1+rue&q=2+rue"),
    ("/s/{session_id}/registry/buildings", "cle_interop=a&min_score=0.5&cle_interop=b"),
    ("/s/{session_id}/directory/practitioners", "name=a&name=b"),
    ("/s/{session_id}/dmp/patients/{patient_id}/documents", "include_deleted=true&include_deleted=false"),
    ("/prod/dataspace/homes/{fiscal}/documents", "kind=dpe&kind=quote"),
])
def test_a_query_parameter_given_twice_is_refused(path: str, query: str, app: Any, http: TestClient) -> None:
    """A service reads each query parameter once (Starlette's first, FastAPI's last): ``?kind=dpe&kind=quote`` let
    the service and a check read different values. Refused 400 ``query-param-repeated``, whatever the route."""
    url, auth = headers_for(app, http, path)
    r = http.get(f"{url}?{query}", headers=auth)
    assert (r.status_code, r.json()["code"]) == (400, "query-param-repeated"), r.text[:300]
    assert query.split("=")[0] in r.json()["detail"]
    once = http.get(f"{url}?{query.split('&')[0]}", headers=auth)
    assert once.status_code < 500 and "query-param-repeated" not in once.text, once.text[:300]


ADMIN_JSON_OPERATIONS = 6  # harness tokens, installations, runs, sessions, notes, faults


@pytest.mark.parametrize("index", range(ADMIN_JSON_OPERATIONS))
def test_a_member_named_twice_is_refused_on_every_admin_operation(index: int, app: Any, http: TestClient,
                                                                  doc: dict[str, Any]) -> None:
    """``{"scenario": "a", "scenario": "b"}`` to the admin API is refused 400 ``duplicate-member`` as on the services
    (not read last-one-wins by FastAPI's parser), at any depth; a caller without credentials still gets 401 first, and
    a body that parses but does not fit still gets 422."""
    ops = [op for op in json_operations(doc) if op[1].startswith("/admin/")]
    assert len(ops) == ADMIN_JSON_OPERATIONS, ops
    method, path = ops[index]
    url, auth = headers_for(app, http, path)
    json_type = {"Content-Type": "application/json"}
    for body in (b'{"scenario": "a", "scenario": "b"}', b'{"data": {"k": 1, "k": 2}, "kind": "x"}'):
        r = http.request(method, url, content=body, headers=auth | json_type)
        assert (r.status_code, r.json()["code"]) == (400, "duplicate-member"), (method, path, body, r.text[:300])
        assert r.json()["member"] in ("scenario", "k")
        assert http.request(method, url, content=body, headers=json_type).status_code == 401
    r = http.request(method, url, content=b'{"no such member": 1}', headers=auth | json_type)
    assert r.status_code == 422, (method, path, r.text[:300])


@pytest.mark.parametrize("method, path, header", [
    ("GET", "/s/{session_id}/dataspace/homes/{fiscal}/documents?kind=dpe", "Consent-Id"),
    ("POST", "/prod/dataspace/homes/{fiscal}/transfers", "Consent-Id"),
    ("GET", "/s/{session_id}/dataspace/homes/{fiscal}/documents?kind=dpe", "Authorization"),
    ("GET", "/s/{session_id}/directory/practitioners", "Authorization"),
    ("POST", "/prod/dataspace/homes/{fiscal}/transfers", "Authorization"),
    ("GET", "/admin/sessions", "Authorization"),
])
def test_a_single_valued_header_given_twice_is_refused(method: str, path: str, header: str, app: Any,
                                                       http: TestClient) -> None:
    """Two ``Consent-Id`` (or two ``Authorization``) headers: the service read the first, a check reading the recorded
    request saw both joined — which consent (which credential) was meant? Refused 400 ``header-repeated`` before
    anything is done, whatever the route, and recorded as sent (both values)."""
    url, auth = headers_for(app, http, path)
    body = b'{"recipient": "x", "period": "2025"}' if method == "POST" else None
    auth |= {"Content-Type": "application/json"} if method == "POST" else {}
    other = auth[header] if header == "Authorization" else "cst_other"
    r = http.request(method, url, content=body, headers=[*auth.items(), (header, other)])
    assert (r.status_code, r.json()["code"]) == (400, "header-repeated"), r.text[:300]
    assert r.json()["header"] == header.lower() and header in r.json()["detail"]
    once = http.request(method, url, content=body, headers=auth)
    assert once.status_code < 500 and "header-repeated" not in once.text, once.text[:300]
    if path.startswith("/s/") and header == "Consent-Id":
        session_id = url.split("/")[2]
        trace = http.get(f"/admin/sessions/{session_id}/trace", headers={"Authorization": f"Bearer {ADMIN}"}).json()
        refused = [e for e in unverified_payload(trace)["exchanges"]
                   if e.get("response", {}).get("body", {}).get("json", {}).get("code") == "header-repeated"]
        assert len(refused) == 1
        assert refused[0]["request"]["headers"]["consent-id"] == f"{auth['Consent-Id']}, cst_other"
