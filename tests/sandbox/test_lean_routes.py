"""A lean route (``LEAN_ROUTES``, served by ``sandbox.app.SessionRoutes`` without FastAPI's routing and dependency
machinery) answers and records exactly what the FastAPI route it stands for answers and records.

``POST /s/{sid}/dmp/documents``, ``POST /s/{sid}/insi/lookup`` and the identity provider's discovery document and
keys over a real server, each request once with the lean route and once without it (two sessions of the same seed,
the same bodies): every status, the headers that matter, every body, and every exchange of the two traces, the same
once the session id, the token and the times are set aside. Declaring a lean route that does not stand for the route
FastAPI would choose is refused when the app is built.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from sandbox.app import SessionRoutes, lean_routes
from sandbox.packs.health import dmp as dmp_service
from sandbox.packs.health import insi as insi_service
from sandbox.packs.health import samples
from sandbox.server import RunningSandbox
from sandbox.services import idp as idp_service
from tests.sandbox.dmp_client import token_for
from tests.sandbox.helpers import trace_payload

#: what changes from one session to the other, whatever the route: set aside before comparing
VARYING = ("time", "duration_ms", "submitted", "token_sha256", "ended")

Request = Callable[[httpx.Client, str, dict[str, str]], httpx.Response]


def _send(service: str, path: str, raw: bytes | None, ctype: str, auth: str | None, other_token: str,
          method: str = "POST", session: str = "own") -> Request:
    """A request to the session's ``service`` (or to a session that does not exist): with its own token, another
    session's, an unknown one, or none."""
    def send(http: httpx.Client, sid: str, headers: dict[str, str]) -> httpx.Response:
        h = {"content-type": ctype} | ({} if auth is None else
                                        {"authorization": f"Bearer {other_token}"} if auth == "other" else
                                        {"authorization": "Bearer " + "u" * 43} if auth == "unknown" else headers)
        where = sid if session == "own" else "s-" + "0" * 32
        return http.request(method, f"/s/{where}/{service}{path}", content=raw, headers=h)
    return send


def _submissions(fixtures: dict[str, Any], other_token: str) -> list[Request]:
    body = samples.session_submission(fixtures, patient=0, type_code="11490-0")
    other = samples.session_submission(fixtures, patient=0, type_code="11490-0", level=3)
    other["metadata"]["unique_id"] = body["metadata"]["unique_id"]  # the same uniqueId, other bytes
    broken = json.loads(json.dumps(body))
    broken["metadata"]["unique_id"] = body["metadata"]["unique_id"] + "9"
    broken["metadata"]["patient_id"] = "nobody"
    invalid = json.loads(json.dumps(body))
    invalid["metadata"]["unique_id"] += "1"
    invalid["metadata"]["hash"] = "0" * 40
    not_base64 = json.loads(json.dumps(body)) | {"document": "not base64!"}

    def post(payload: Any = None, *, content: bytes | None = None, ctype: str = "application/json",
             auth: str | None = "own", path: str = "/documents") -> Request:
        raw = content if content is not None else json.dumps(payload).encode()
        return _send("dmp", path, raw, ctype, auth, other_token)

    return [post(body), post(body), post(other), post(body, ctype="text/plain"), post(content=b'{"metadata": '),
            post({"metadata": {}}), post(not_base64), post(invalid), post(broken), post(body, auth=None),
            post(body, auth="unknown"), post(body, auth="other"), post(body, path="/documents/"),
            post({"document": body["document"], "extra": 1})]


def _lookups(fixtures: dict[str, Any], other_token: str) -> list[Request]:
    def traits(scenario: str) -> dict[str, Any]:
        return dict(next(p for p in fixtures["patients"] if p["scenario"] == scenario)["registered_traits"])

    match = traits("match")

    def post(payload: Any = None, *, content: bytes | None = None, ctype: str = "application/json",
             auth: str | None = "own", path: str = "/lookup") -> Request:
        raw = content if content is not None else json.dumps(payload).encode()
        return _send("insi", path, raw, ctype, auth, other_token)

    return [post(match), post(traits("multiple")), post(traits("absent")),
            post(match | {"birth_name": match["birth_name"].lower()}), post(match | {"birth_date": "2023-02-29"}),
            post(match | {"extra": 1}), post({k: v for k, v in match.items() if k != "sex"}),
            post(match, ctype="text/plain"), post(content=b'{"birth_name": '), post(content=b"[1, 2]"),
            post(match, auth=None), post(match, auth="unknown"), post(match, auth="other"),
            post(match, path="/lookup/")]


def _logins(fixtures: dict[str, Any], other_token: str) -> list[Request]:
    def get(path: str, *, auth: str | None = None, session: str = "own") -> Request:
        return _send("idp", path, None, "application/json", auth, other_token, method="GET", session=session)

    discovery, keys = "/.well-known/openid-configuration", "/jwks"
    return [get(discovery), get(keys), get(discovery, auth="own"), get(keys, auth="unknown"),
            get(keys, auth="other"), get(discovery + "/"), get(keys + "/"), get(discovery, session="unknown"),
            get(keys, session="unknown")]


@dataclass(frozen=True)
class Case:
    """A service's lean routes, the requests they are compared on, the faults then put one after the other (each
    followed by one of the requests again, by its index), the statuses, and how many requests went to a session that
    does not exist (in no trace)."""

    routes: list[tuple[str, str, str]]
    requests: Callable[[dict[str, Any], str], list[Request]]
    faults: list[tuple[dict[str, Any], int]]
    statuses: list[int]
    unrecorded: int = 0


CASES = {
    "dmp": Case([("dmp", "POST", "/documents")], _submissions, [({"dmp": {"unavailable": 1}}, 0)],
                [201, 200, 409, 415, 400, 422, 400, 422, 422, 401, 401, 403, 307, 422, 503]),
    "insi": Case([("insi", "POST", "/lookup")], _lookups,
                 [({"insi": {"unavailable": 1}}, 0), ({"insi": {"ins": "short_ins"}}, 0)],
                 [200, 200, 200, 422, 422, 422, 422, 415, 400, 422, 401, 401, 403, 307, 503, 200]),
    "idp": Case([("idp", "GET", "/.well-known/openid-configuration"), ("idp", "GET", "/jwks")], _logins,
                [({"idp": {"discovery_other_issuer": True}}, 0), ({"idp": {"rotate_keys": True}}, 1)],
                [200, 200, 200, 200, 200, 307, 307, 404, 404, 200, 200], unrecorded=2),
}


def _normalised(value: Any, sid: str) -> Any:
    if isinstance(value, dict):
        return {k: _normalised(v, sid) for k, v in value.items() if k not in VARYING}
    if isinstance(value, (list, tuple)):
        return [_normalised(v, sid) for v in value]
    return value.replace(sid, "SID") if isinstance(value, str) else value


@pytest.fixture(params=sorted(CASES))
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def both(sandbox_server: RunningSandbox, admin: httpx.Client,
         service: str) -> Iterator[Callable[[bool], tuple[list[Any], list[Any]]]]:
    app = sandbox_server.server.config.app
    with_lean = app.router.middleware_stack
    case = CASES[service]
    assert isinstance(with_lean, SessionRoutes) and all(route in with_lean.lean for route in case.routes)
    without = SessionRoutes(app.router)
    other_session = admin.post("/admin/sessions", json={"seed": 77}).json()
    other_token = token_for(sandbox_server, other_session)
    requests: list[Request] = []

    def run(lean: bool) -> tuple[list[Any], list[Any]]:
        session = admin.post("/admin/sessions", json={"seed": 4242}).json()
        sid, headers = session["session_id"], {"authorization": f"Bearer {token_for(sandbox_server, session)}"}
        app.router.middleware_stack = with_lean if lean else without
        answers = []
        with httpx.Client(base_url=sandbox_server.base_url, timeout=30, follow_redirects=False) as http:
            requests[:] = requests or case.requests(session["fixtures"], other_token)  # the same bodies for both
            for send in requests:
                r = send(http, sid, headers)
                answers.append((r.status_code, r.headers.get("content-type"), r.headers.get("location"),
                                r.headers.get("www-authenticate"), r.headers.get("retry-after"),
                                r.json() if r.content else None))
            for fault, again in case.faults:
                assert admin.put(f"/admin/sessions/{sid}/faults", json=fault).status_code == 200
                r = requests[again](http, sid, headers)
                answers.append((r.status_code, r.headers.get("retry-after"), r.json()))
        trace = trace_payload(admin.get(f"/admin/sessions/{sid}/trace"))
        return _normalised(answers, sid), _normalised([e for e in trace["exchanges"] if e["kind"] == "http"], sid)

    try:
        yield run
    finally:
        app.router.middleware_stack = with_lean


def test_a_lean_route_answers_and_records_what_the_route_does(both: Callable[[bool], Any], service: str) -> None:
    lean_answers, lean_trace = both(True)
    route_answers, route_trace = both(False)
    statuses = [a[0] for a in lean_answers]
    assert statuses == CASES[service].statuses, lean_answers
    for mine, theirs in zip(lean_answers, route_answers, strict=True):
        assert mine == theirs
    assert len(lean_trace) == len(route_trace) == len(statuses) - CASES[service].unrecorded
    for mine, theirs in zip(lean_trace, route_trace, strict=True):
        assert mine == theirs


def test_a_lean_route_must_stand_for_the_route_fastapi_would_choose() -> None:
    class Service:
        router = APIRouter()

    async def first() -> None: ...
    async def second() -> None: ...
    async def handler(request: Any, session_id: str) -> Any: ...

    Service.router.add_api_route("/documents/{anything}", first, methods=["POST"])
    Service.router.add_api_route("/documents/x", second, methods=["POST"])
    Service.LEAN_ROUTES = {("POST", "/documents/x"): (second, handler)}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="does not stand for the route that serves it"):
        lean_routes("demo", Service)
    Service.LEAN_ROUTES = {("POST", "/documents/y"): (first, handler)}  # type: ignore[attr-defined]
    assert set(lean_routes("demo", Service)) == {("POST", "/documents/y")}
    assert set(lean_routes("dmp", dmp_service)) == {("POST", "/documents")}
    assert set(lean_routes("insi", insi_service)) == {("POST", "/lookup")}
    assert set(lean_routes("idp", idp_service)) == {("GET", "/.well-known/openid-configuration"), ("GET", "/jwks")}


def test_every_profile_of_the_identity_provider_is_served_lean(sandbox_server: RunningSandbox) -> None:
    stack = sandbox_server.server.config.app.router.middleware_stack
    assert isinstance(stack, SessionRoutes)
    for profile in sandbox_server.server.config.app.state.oidc_profiles:
        assert (profile, "GET", "/jwks") in stack.lean and (profile, "GET", "/.well-known/openid-configuration") in stack.lean
