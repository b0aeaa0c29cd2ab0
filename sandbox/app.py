"""The sandbox ASGI application: services mounted per session, admin API, recording middleware."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import os
import re
from collections.abc import Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.routing import compile_path

from conformity import __version__
from conformity.counting import KeyedCounts
from conformity.files import write_atomic
from conformity.http_head import as_get
from conformity.infrastructure_keys import keys_document
from conformity.signing import SigningKey
from sandbox import admin, events, plugins, traces
from sandbox import openapi as openapi_doc
from sandbox.config import SandboxConfig
from sandbox.deps import (
    REQUEST_SERVICE,
    REQUEST_SESSION,
    FastJSONResponse,
    LeanHandler,
    refuse_other_packs,
    refuse_repeated_headers,
    refuse_repeated_query,
)
from sandbox.events import EventLog
from sandbox.problems import MEDIA_TYPE, HTTPProblem, install_handlers
from sandbox.recording import InFlight, RecordingMiddleware
from sandbox.services import idp
from sandbox.store import open_store
from sandbox.sweep import sweep_periodically

#: service name in URLs → module in sandbox.services (each has ``router``, optionally ``prod_router``)

DESCRIPTION = """The national infrastructure imitated for conformity testing (never the real service).

* `/admin/...` — the admin API (admin token): test sessions, faults, notes, traces, installations, events.
* `/s/{session_id}/<service>/...` — a test session's services; every exchange is recorded in its trace.
* `/prod/<service>/...` — the production role for installed software (installation token); accepted data
  emits CloudEvents data-received events, sealed in segments signed with the infrastructure key
  (`/.well-known/usine-infrastructure-keys`).

Every error is an RFC 9457 problem document (`application/problem+json`) with a stable `code`. Bad input,
one rule everywhere: 415 for a body of another media type, 400 for what cannot be parsed (the JSON body, or a
document it carries: base64, XML), 422 for what parsed but breaks the schema or a rule (the OAuth endpoints
answer as RFC 6749 says). Software calling the national services identifies itself in `User-Agent`:
`<name>/<version> (<registration id>)`.
"""


def event_sources(config: SandboxConfig) -> list[str]:
    """The CloudEvents sources of the production services (every pack's services with a ``prod_router``)."""
    return [f"{config.installation_event_source}:{name}" for name, module in plugins.services().items()
            if hasattr(module, "prod_router")]


def limit_threads(threads: int) -> None:
    """This event loop's thread pool — anyio's default limiter, which FastAPI's plain-function routes and dependencies
    and ``run_in_threadpool`` (the store's calls on PostgreSQL, a large document's validation) take threads from — at
    ``threads`` (:meth:`SandboxConfig.loop_threads`); called as a served sandbox starts, on its loop.

    anyio's default is 40. On PostgreSQL every store call is a round trip in a thread, and up to 40 threads of one
    worker take turns at its GIL and hold as many connections: measured on the 2-core machine, 250 sessions back to
    back (``benchmarks/sandbox_throughput.py --workers 1,2 --database …``), one worker served 241-249 requests/s at
    4.0-4.2 ms of sandbox CPU a request with 40 threads, 298-305 at 3.1-3.2 ms with 4, and two workers 272-310
    against 372-395 (8 threads: 264 and 344; 2: 281 and 384; 1: 197, each request waiting its turn). On SQLite the
    store's calls run on the loop: 250 paced sessions got the same throughput with 4 threads as with 40."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads


_log = logging.getLogger("usine.sandbox.events")

async def _seal_periodically(log: EventLog, seconds: float) -> None:
    """Seal the events emitted since the last segment every ``seconds``. A seal that fails (a full or read-only disk,
    the key unreadable) is logged and tried again at the next period: the task never ends but cancelled — ended by
    the first error, no event of this worker was ever sealed again, and the shutdown, awaiting it, re-raised that
    error before the last seal and the store's close."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(log.seal)
        except Exception:  # what is not sealed stays in the log, sealed by the next seal that succeeds
            _log.exception("sealing the data-received events failed; tried again in %g s", seconds)


#: the production role's routes: its data-received events go to one signed, append-only log file, which one process
#: writes (a sandbox with several workers serves the test sessions of a wave; a one-worker sandbox the production role)
SINGLE_WRITER = ("/prod/", "/admin/installations", "/admin/events")


class SingleWriterRoutes:
    """With several workers: the production role's routes answer 503 ``production-role-single-worker``."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SINGLE_WRITER):
            problem = HTTPProblem(503, "production-role-single-worker",
                              "this sandbox serves test sessions with several worker processes; the production role "
                              "(installations, data-received events) is served by a one-worker sandbox")
            response = JSONResponse(problem.body(scope["path"]), status_code=problem.status, media_type=MEDIA_TYPE)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


#: the service a route serves under ``/s/{session_id}/<service>``, from its path (or its included router's prefix)
ROUTE_SERVICE = re.compile(r"^/s/\{session_id\}/([a-z]+)(?:/|$)")


def route_services(route: Any) -> set[str] | None:
    """The session services whose requests ``route`` may serve: a set (empty: none, e.g. ``/admin/...``), or None
    when it may serve any path under ``/s/`` (a pattern there without a service, a parameter first)."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        path = getattr(getattr(route, "include_context", None), "prefix", None) or ""
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if not path and inner is not None:  # an included router without a prefix: what its routes serve
            found: set[str] = set()
            for r in inner:
                services = route_services(r)
                if services is None:
                    return None
                found |= services
            return found
    match = ROUTE_SERVICE.match(path)
    if match:
        return {match[1]}
    first = path.lstrip("/").split("/", 1)[0]
    return set() if first and first != "s" and "{" not in first else None


def lean_routes(name: str, module: Any) -> dict[tuple[str, str], tuple[APIRoute, LeanHandler]]:
    """A service module's ``LEAN_ROUTES`` — ``(method, path under the service) → (endpoint, handler)``: requests its
    FastAPI route ``endpoint`` serves, answered by ``handler`` without FastAPI's routing and dependency machinery —
    checked to stand for the route FastAPI would choose: ``endpoint`` is the first of the service's routes that
    matches that method and path (no pattern before it takes the path, no other route with its path and method)."""
    out: dict[tuple[str, str], tuple[APIRoute, LeanHandler]] = {}
    for (method, tail), (endpoint, handler) in getattr(module, "LEAN_ROUTES", {}).items():
        first = None
        for route in module.router.routes:
            if not isinstance(route, APIRoute):  # a nested router or a mount: its matching is not checked here
                raise ValueError(f"service {name}: lean route {method} {tail} beside a route it cannot check")
            if compile_path(route.path)[0].match(tail) and method in (route.methods or ()):
                first = route
                break
        if first is None or first.endpoint is not endpoint:
            raise ValueError(f"service {name}: lean route {method} {tail} does not stand for the route that serves it")
        out[(method, tail)] = (first, handler)
    return out


class SessionRoutes:
    """The app's route dispatch, with a request under ``/s/{session_id}/<service>/`` matched only against the routes
    that can serve it (that service's, and any that may serve every session path), in their order — instead of every
    route of every service and the admin API one after the other (0.2 ms for a document submission, 0.5 ms for the
    liveness probe). Same answer: a route left out cannot match such a path; with none matching, the per-service router
    answers as the app's (trailing-slash redirect among the same routes, then the app's 404). Any other request goes
    to the app's router as before.

    ``lean``: service → its lean routes (:func:`lean_routes`), taken only where nothing but the service's own routes
    can serve its paths. A request for one (the method, ``/s/{session_id}/<service>`` and that very path) is answered
    by its handler, in the scope the route would have had (endpoint, path parameters, route): the same dependency and
    endpoint, their problems handled by the app's exception handlers as the route's would be."""

    def __init__(self, router: APIRouter,
                 lean: Mapping[str, Mapping[tuple[str, str], tuple[APIRoute, LeanHandler]]] | None = None,
                 own_queries: frozenset[str] = frozenset()):
        self.router = router
        self.own_queries = own_queries
        services = [(r, route_services(r)) for r in router.routes]
        names: set[str] = set().union(*(s for _, s in services if s))
        self.by_service: dict[str, APIRouter] = {}
        self.lean: dict[tuple[str, str, str], tuple[APIRoute, LeanHandler]] = {}
        for name in names:
            sub = APIRouter(routes=[r for r, served in services if served is None or name in served],
                            redirect_slashes=router.redirect_slashes)
            sub.default = router.default
            self.by_service[name] = sub
            if all(served == {name} for r, served in services if served is None or name in served):
                self.lean.update({(name, method, tail): handler
                                  for (method, tail), handler in (lean or {}).get(name, {}).items()})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope = as_get(scope)  # HEAD answered as GET without its body (the recording, outside, records the HEAD)
        if scope["type"] == "http":
            path = scope["path"]
            match = REQUEST_SERVICE.match(path)
            own = match is not None and match[1] in self.own_queries
            if scope.get("query_string") and not own:
                refuse_repeated_query(scope["query_string"])
            refuse_repeated_headers(scope["headers"], oauth=own)
            session = scope.get("state", {}).get(REQUEST_SESSION) if match else None
            if session is not None:  # as the recording read it: another pack's service is refused before its checks
                assert match is not None
                refuse_other_packs(session, match[1])
            lean = self.lean.get((match[1], scope["method"], path[match.end(1):])) if match and self.lean else None
            if lean is not None:
                assert match is not None
                await self._lean(scope, receive, send, lean, path[3:match.start(1) - 1])
                return
            sub = self.by_service.get(match[1]) if match else None
            if sub is not None:
                scope.setdefault("router", self.router)
                await sub.app(scope, receive, send)
                return
        await self.router.app(scope, receive, send)

    async def _lean(self, scope: Any, receive: Any, send: Any, lean: tuple[APIRoute, LeanHandler],
                    session_id: str) -> None:
        route, handler = lean
        scope.setdefault("router", self.router)
        scope.update(endpoint=route.endpoint, path_params={"session_id": session_id}, route=route)
        response = await handler(Request(scope, receive, send), session_id)
        await response(scope, receive, send)


#: FastAPI's native OpenTelemetry (FastAPI 0.16x and later), off: the sandbox exports no telemetry (what it sees of
#: an exchange goes to the session's trace only; the exchanges carry the test fixtures' personal data), and with it on FastAPI
#: asked the process-wide tracer, meter and logger providers on every request whether one was configured (a dozen
#: Python calls and three environment reads, on the path of every request)
TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}


def _fastapi_options() -> dict[str, Any]:
    """The FastAPI options this FastAPI takes: telemetry off where it has telemetry (older ones have none)."""
    return {"telemetry": TELEMETRY_OFF} if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}


def _profile_route_id(profile: str, route: APIRoute) -> str:
    """The OpenAPI operation id of an identity-provider route mounted for one pack profile."""
    return f"{profile}_{route.name}_{'_'.join(sorted(route.methods or ())).lower()}"


def create_app(config: SandboxConfig) -> FastAPI:
    """Build a sandbox app with its own state folder."""
    store = open_store(config.database, config.db_path)
    infrastructure_key = SigningKey.load_or_create(config.infrastructure_key_path)
    sources = event_sources(config)
    event_log = EventLog(config.events_path, infrastructure_key, sources, seal_every=config.seal_every)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if (threads := config.loop_threads()) is not None:
            limit_threads(threads)
        sealing = asyncio.create_task(_seal_periodically(event_log, config.seal_seconds))
        sweeping = asyncio.create_task(sweep_periodically(store, config))  # sessions past their retention
        try:
            yield
        finally:
            for task in (sealing, sweeping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            event_log.seal()  # nothing emitted stays unsealed across a restart
            store.close()

    # its /docs and /redoc load Swagger UI's and ReDoc's scripts from the sandbox itself (fastapi-offline's copies):
    # FastAPI's own pages load them from a CDN, which an agency's or a vendor's network may not reach, and a page of
    # the sandbox loads nothing from a third party
    app = FastAPIOffline(title="usine sandbox", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                         default_response_class=FastJSONResponse, **_fastapi_options())
    app.state.config = config
    app.state.store = store
    app.state.trace_key = SigningKey.load_or_create(config.trace_key_path)
    app.state.event_log = event_log
    app.state.infrastructure_keys = keys_document([(infrastructure_key.verify_key, sources)],
                                                  name="usine sandbox (production role)")
    write_atomic(config.infrastructure_keys_path, json.dumps(app.state.infrastructure_keys, indent=1) + "\n")
    install_handlers(app)
    app.include_router(admin.router)
    app.include_router(traces.router)
    app.include_router(events.router)
    app.state.oidc_profiles = plugins.profiles()
    idp.setup(app)
    for name in app.state.oidc_profiles:  # the one provider, once per pack profile
        app.include_router(idp.router, prefix=f"/s/{{session_id}}/{name}", tags=[name],
                           generate_unique_id_function=functools.partial(_profile_route_id, name))
    for name, module in plugins.services().items():
        app.include_router(module.router, prefix=f"/s/{{session_id}}/{name}")
        if hasattr(module, "prod_router"):
            app.include_router(module.prod_router, prefix=f"/prod/{name}")
        if hasattr(module, "setup"):
            module.setup(app)

    @app.get("/health", tags=["meta"], summary="Liveness")
    def health() -> dict[str, Any]:
        # the worker process that answered: a reverse proxy's liveness probes see every worker of the pool
        return {"status": "ok", "version": __version__, "worker": os.getpid()}

    if config.workers > 1:
        app.add_middleware(SingleWriterRoutes)
    app.state.in_flight = InFlight()  # the session requests being handled: a harness note waits for them
    app.state.exports = KeyedCounts()  # the signed trace exports under way, per vendor's software (admin.get_trace)
    app.add_middleware(RecordingMiddleware, store=store, max_body_bytes=config.max_body_bytes,
                       in_flight=app.state.in_flight, max_session_bytes=config.session_recorded_bytes,
                       session_ttl=config.session_ttl)
    openapi_doc.install(app)
    lean = {name: lean_routes(name, module) for name, module in plugins.services().items()}
    lean |= {name: lean_routes(name, idp) for name in app.state.oidc_profiles}
    # every route is in place: index them by service (the identity providers read their queries their own way)
    app.router.middleware_stack = SessionRoutes(app.router, lean, frozenset(app.state.oidc_profiles))
    return app
