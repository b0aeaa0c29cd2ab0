"""The sandbox ASGI application: services mounted per session, admin API, recording middleware."""

from __future__ import annotations

import importlib
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from conformity import __version__
from conformity.signing import SigningKey
from sandbox import admin, traces
from sandbox.config import SandboxConfig
from sandbox.events import EventLog
from sandbox.problems import install_handlers
from sandbox.recording import RecordingMiddleware
from sandbox.store import Store

#: service name in URLs → module in sandbox.services (each has ``router``, optionally ``prod_router``)
SERVICE_MODULES = {"idp": "idp", "insi": "insi", "dmp": "dmp", "mss": "messaging", "directory": "directory"}

DESCRIPTION = """The national infrastructure imitated for conformity testing (never the real service).

* `/admin/...` — the admin API (admin token): test sessions, faults, notes, traces, installations, events.
* `/s/{session_id}/<service>/...` — a test session's services; every exchange is recorded in its trace.
* `/prod/<service>/...` — the production role for installed software (installation token); accepted data
  emits CloudEvents data-received events.

Every error is an RFC 9457 problem document (`application/problem+json`) with a stable `code`.
"""


def create_app(config: SandboxConfig) -> FastAPI:
    """Build a sandbox app with its own state folder."""
    store = Store(config.db_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        store.close()

    app = FastAPI(title="usine sandbox", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.config = config
    app.state.store = store
    app.state.trace_key = SigningKey.load_or_create(config.trace_key_path)
    app.state.event_log = EventLog(config.events_path)
    install_handlers(app)
    app.include_router(admin.router)
    app.include_router(traces.router)
    for name, module_name in SERVICE_MODULES.items():
        module = importlib.import_module(f"sandbox.services.{module_name}")
        app.include_router(module.router, prefix=f"/s/{{session_id}}/{name}")
        if hasattr(module, "prod_router"):
            app.include_router(module.prod_router, prefix=f"/prod/{name}")
        if hasattr(module, "setup"):
            module.setup(app)

    @app.get("/health", tags=["meta"], summary="Liveness")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.add_middleware(RecordingMiddleware, store=store, max_body_bytes=config.max_body_bytes)
    return app
