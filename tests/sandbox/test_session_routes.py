"""The per-service route dispatch (``sandbox.app.SessionRoutes``) answers exactly as FastAPI's router walk.

Every operation of the OpenAPI document, each method the API has (allowed or not), trailing slashes, unknown
services and sessions, the admin API and the production role: the same status, headers that matter and body from
the app with the index and from the same app walking every route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sandbox.app import SessionRoutes, create_app, route_services
from sandbox.config import SandboxConfig
from sandbox.sessions import services

ADMIN = "session-routes-admin-token-0123456789"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    config = SandboxConfig(data_dir=tmp_path_factory.mktemp("routes"), admin_token=ADMIN)
    yield create_app(config)


def requests_to_try(app: FastAPI, sid: str) -> Iterator[tuple[str, str]]:
    for template, item in app.openapi()["paths"].items():
        path = re.sub(r"\{session_id\}", sid, template)
        path = re.sub(r"\{[^}]+\}", "x", path)
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            yield method, path
        yield next(iter(item)).upper(), path + "/"
    for path in (f"/s/{sid}/nosuchservice/x", f"/s/{sid}/dmp", f"/s/{sid}/dmp/", "/s/ses_unknown/dmp/documents",
                 f"/s/{sid}/DMP/documents", f"/s/{sid}", "/s/", "/nowhere", "/health/", f"/s/{sid}/trace"):
        for method in ("GET", "POST"):
            yield method, path


def content(r: Any) -> Any:
    """What an answer says, but a signed trace's export time (to the second: two exports a second apart differ there
    alone, which made this comparison fail now and then under load): its payload without ``exported``."""
    if r.status_code == 200 and r.url.path.endswith("/trace"):
        from conformity.signing import unverified_payload

        return {k: v for k, v in unverified_payload(r.json()).items() if k != "exported"}
    return r.content


def test_the_index_answers_what_the_router_walk_answers(app: FastAPI) -> None:
    assert isinstance(app.router.middleware_stack, SessionRoutes)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(app, follow_redirects=False) as client:
        sid = client.post("/admin/sessions", json={"seed": 3, "pack": "health"}, headers=headers).json()["session_id"]
        tried = others = 0
        for method, path in requests_to_try(app, sid):
            if path.startswith("/admin/sessions") and method in ("POST", "DELETE", "PUT", "PATCH"):
                continue  # changes state: answered once, not compared
            answers = []
            for dispatch in (SessionRoutes(app.router), app.router.app):
                app.router.middleware_stack = dispatch
                r = client.request(method, path, headers=headers, json={} if method != "GET" else None)
                answers.append((r.status_code, r.headers.get("allow"), r.headers.get("location"),
                                r.headers.get("content-type"), content(r)))
            named = re.match(r"^/s/[^/]+/([a-z]+)(?:/|$)", path)
            if named and named[1] in services(None) and named[1] not in services("health"):
                # another pack's service: the index refuses it, whatever the method (the bare router walk knows no packs)
                assert answers[0][0] == 404 and b"service-not-in-pack" in answers[0][4], (method, path)  # type: ignore[operator]
                others += 1
                continue
            assert answers[0] == answers[1], (method, path)
            tried += 1
        app.router.middleware_stack = SessionRoutes(app.router)
    assert tried > 150 and others > 10


def test_routes_are_indexed_by_the_service_they_serve() -> None:
    class Route:
        def __init__(self, path: str):
            self.path = path

    assert route_services(Route("/s/{session_id}/dmp/documents")) == {"dmp"}
    assert route_services(Route("/admin/sessions")) == set()
    assert route_services(Route("/s/{session_id}")) is None  # may serve any session path
    assert route_services(Route("/{anything}")) is None
    assert route_services(Route("/s/{sid}/dmp")) is None  # another parameter name: not assumed


def test_fastapi_s_native_telemetry_is_off(app: FastAPI) -> None:
    """The sandbox exports no telemetry: where FastAPI has native OpenTelemetry (0.16x and later), the app turns its
    tracing, metrics and logs off, so no request asks the process-wide providers whether one is configured."""
    from sandbox.app import TELEMETRY_OFF

    config = getattr(app, "_telemetry", None)
    if config is None:
        pytest.skip("this FastAPI has no native telemetry")
    assert {name: config[name] for name in TELEMETRY_OFF} == TELEMETRY_OFF
