"""RFC 9110 on every router: one rule for bad input (415 / 400 / 422), 405 with Allow, strict admin models."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

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
    url = path.replace("{session_id}", session["id"]).replace("{unique_id}", "x").replace("{patient_id}", "x")
    if path.startswith("/admin/"):
        return url, {"Authorization": f"Bearer {ADMIN}"}
    if path.startswith("/prod/"):
        r = http.post("/admin/installations", headers={"Authorization": f"Bearer {ADMIN}"}, json={
            "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme", "version": "1.0"},
            "site": {"id": "750100011", "size": "M"}, "wave": "2026-W1", "category": "GP"})
        return url, {"Authorization": f"Bearer {r.json()['token']}"}
    token = issue_access_token(app.state.store, session["id"], session["fixtures"]["practitioners"][0]["national_id"])
    return url, {"Authorization": f"Bearer {token}"}


def json_operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, item in doc["paths"].items() for method, op in item.items()
                  if "application/json" in op.get("requestBody", {}).get("content", {}))


def test_every_json_body_operation_is_listed(doc: dict[str, Any]) -> None:
    ops = json_operations(doc)
    assert len(ops) == 11, ops  # admin (5), insi, dmp (2), mss, and the production role (2)


@pytest.mark.parametrize("index", range(11))
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
    for body, media, status, code in cases:
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
