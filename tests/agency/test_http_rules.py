"""RFC 9110 on the agency service's API, as on the sandbox's: 405 with Allow listing the resource's methods, and one
rule for bad JSON bodies (415 another media type, 400 not JSON, 422 JSON that does not fit, once the caller's token
is known: 401 before)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conformity.agency.service import ServiceConfig, create_app
from conformity.catalog import load_catalog
from conformity.db.connection import Database
from conformity.signing import KeyRing, SigningKey

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
SANDBOX = SigningKey.from_seed(b"usine tests: agency http rules")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("agency-http")
    (tmp / "sandbox.pub.pem").write_text(SANDBOX.verify_key.pem())
    config = ServiceConfig(database=Database(tmp / "registry.sqlite3"), catalog=load_catalog(),
                           trust=KeyRing.from_paths([tmp / "sandbox.pub.pem"]), key_path=tmp / "agency.pem",
                           data=tmp / "service", background=False, webhooks=False)
    with TestClient(create_app(config), base_url="https://testserver") as client:  # type: ignore[arg-type]
        yield client


@pytest.fixture(scope="module")
def doc(http: TestClient) -> dict[str, Any]:
    return http.get("/openapi.json").json()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_api_path_answers_405_with_allow_listing_its_methods(http: TestClient, doc: dict[str, Any]) -> None:
    checked = 0
    for path, item in doc["paths"].items():
        declared = {m.upper() for m in item}
        for method in sorted(set(METHODS) - declared):
            r = http.request(method, concrete(path), headers={"Accept": "application/json"})
            assert r.status_code == 405, (method, path, r.status_code)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            assert allowed == declared | ({"HEAD"} if "GET" in declared else set()), (method, path, allowed)
            assert r.headers["content-type"] == "application/problem+json" and r.json()["code"] == "method-not-allowed"
            checked += 1
    assert checked > 50


def json_operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Operations whose body is JSON only (witnessed runs take a form too)."""
    return sorted((method.upper(), path) for path, item in doc["paths"].items() for method, op in item.items()
                  if list(op.get("requestBody", {}).get("content", {})) == ["application/json"])


def test_the_staff_api_bodies_are_all_listed(doc: dict[str, Any]) -> None:
    assert len(json_operations(doc)) == 4, json_operations(doc)  # reviews, decision, revocation, reinstatement


@pytest.mark.parametrize("index", range(4))
def test_one_rule_for_bad_json_bodies(index: int, http: TestClient, doc: dict[str, Any]) -> None:
    method, path = json_operations(doc)[index]
    cases = [(b"reason=x", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
             (b"{}", "text/plain", 415, "unsupported-media-type"),
             (b'{"truncated": ', "application/json", 400, "json-malformed"),
             # JSON that does not fit, from nobody: the token is checked before the body (401, nothing said of the
             # body's shape); with a staff token it is 422 invalid-request (tests/agency/test_staff_api.py)
             (b'["a list"]', "application/json", 401, "unauthenticated")]
    for body, media, status, code in cases:
        r = http.request(method, concrete(path), content=body, headers={"Content-Type": media})
        assert (r.status_code, r.json()["code"]) == (status, code), (method, path, media, r.text[:300])
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/", "/registry", "/revocations", "/waves", "/login", "/healthz", "/static/style.css",
                                  "/openapi.json"])
def test_head_answers_what_get_answers(http: TestClient, path: str) -> None:
    """RFC 9110 §9.3.2: a HEAD of a public page was 405 (FastAPI's routes match GET only) while every 405 listed HEAD
    in Allow; it is now the GET's status and headers (uvicorn sends no body for a HEAD: tests/sandbox/test_head.py)."""
    get, head = http.get(path), http.head(path)
    assert head.status_code == get.status_code == 200, (path, head.status_code)
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


def test_an_answer_no_handler_made_carries_the_security_headers_too(tmp_path: Path) -> None:
    """A 500 (an exception no handler took) went out from Starlette's server-error middleware, outside the security
    headers: no Content-Security-Policy, nosniff nor no-store on the one page that may show an error's text."""
    (tmp_path / "sandbox.pub.pem").write_text(SANDBOX.verify_key.pem())
    config = ServiceConfig(database=Database(tmp_path / "registry.sqlite3"), catalog=load_catalog(),
                           trust=KeyRing.from_paths([tmp_path / "sandbox.pub.pem"]), key_path=tmp_path / "agency.pem",
                           data=tmp_path / "service", background=False, webhooks=False)
    app = create_app(config)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:  # type: ignore[arg-type]
        r = client.get("/boom", headers={"Authorization": "Bearer anything"})
        ok = client.get("/healthz")
    assert r.status_code == 500
    for name in ("content-security-policy", "x-content-type-options", "strict-transport-security"):
        assert r.headers.get(name) == ok.headers.get(name) is not None, name
    assert r.headers["cache-control"] == "no-store"
