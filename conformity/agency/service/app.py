"""Assembly of the agency service: routes, problem handlers, security headers, the upload queue at start."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformity.agency.registry import Registry
from conformity.agency.service import admin, api, staff_api, uploads, web, witnessed
from conformity.agency.service.config import ServiceConfig
from conformity.agency.service.deps import SESSION_COOKIE, LoginRequired, PasswordChangeRequired
from conformity.agency.service.problems import HTTPProblem, install_handlers, respond
from conformity.agency.service.webhooks import Deliverer
from conformity.agency.submit import agency_signing_key
from conformity.http_head import HeadAsGet

#: pages may load this site's styles, images and frames (evidence), run no script, post only here
PAGE_CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
CSS = """
:root{--ink:#1b1f24;--muted:#4a5260;--accent:#0b4f9c;--ok:#155e2f;--bad:#9b1c14;--warn:#6b4a00}
body{font:16px/1.5 system-ui,sans-serif;color:var(--ink);margin:0;background:#fafbfc}
header{background:#0b3563;color:#fff;padding:8px 24px;display:flex;flex-wrap:wrap;gap:16px;align-items:center}
header a{color:#fff}.brand{font-weight:600;margin:0}nav ul{list-style:none;display:flex;gap:16px;margin:0;padding:0}
.who{margin-left:auto;display:flex;gap:8px;align-items:center}main{padding:16px 24px;max-width:1200px}
a{color:var(--accent)}header a,footer a{color:inherit}footer{padding:8px 24px;color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:8px 0 16px}th,td{border-bottom:1px solid #d6dae0;padding:4px 8px;text-align:left}
caption{text-align:left;color:var(--muted)}.status{font-weight:600}.valid,.labelled{color:var(--ok)}
.revoked,.refused{color:var(--bad)}.expired,.pending,.awaiting-review{color:var(--warn)}
.filters{display:flex;flex-wrap:wrap;gap:6px;align-items:center}.stack{display:grid;gap:6px;max-width:520px;margin:8px 0}
.req{border:1px solid #d6dae0;border-radius:6px;padding:8px 12px;margin:12px 0;background:#fff}
.evidence{max-width:100%;width:720px;height:480px;border:1px solid #d6dae0}img.evidence{object-fit:contain;background:#f6f7f9}
.done{background:#e7f3ea;padding:6px 10px}.four-eyes{color:var(--warn)}.skip{position:absolute;left:-999px}
.skip:focus{left:8px;top:8px;background:#fff;padding:4px}pre{background:#eef0f3;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}
button{padding:4px 12px}
"""


def _personal(scope: Scope) -> bool:
    """Whether a request carries who is asking (a session cookie, an API token): its answer is made for them."""
    session = SESSION_COOKIE.encode() + b"="
    return any(name == b"authorization" or (name == b"cookie" and session in value) for name, value in scope["headers"])


class SecurityHeaders:
    """Pure ASGI middleware: safe defaults on every answer (a route's own headers win).

    An answer to a request that carries a session or a token is made for that person (a page with their session's
    CSRF token and what only they may read, a vendor's submissions): ``Cache-Control: no-store``, so that no shared
    cache nor the browser's disk keeps it for the next person at that URL.

    With ``timing``, each answer also says how long the app took to make it (``Server-Timing: app;dur=MS``,
    W3C Server Timing): what a benchmark separates from queueing and the client's own time.
    """

    def __init__(self, app: ASGIApp, hsts: bool = True, timing: bool = False):
        self.app, self.hsts, self.timing = app, hsts, timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        personal = _personal(scope)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if self.timing:
                    headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
                for name, value in (("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin"),
                                    ("x-frame-options", "SAMEORIGIN")):
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", PAGE_CSP)
                if personal:
                    headers.setdefault("cache-control", "no-store")
                if self.hsts:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, with_headers)


class _Service(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside Starlette's server-error middleware: a 500 (an exception no
    handler took) carries the same headers as every other answer (added among the app's middleware, it went out
    without them: no CSP, no nosniff, no no-store)."""

    security_headers: dict[str, bool] = {}

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), **self.security_headers)


def create_app(config: ServiceConfig) -> FastAPI:
    """The service (a FastAPI app): give it to uvicorn, or to a test client."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with Registry(config.database):  # migrations checked once, before the first request
            pass
        for ident in uploads.pending_uploads(config):  # received but not verified when a worker stopped
            uploads.process_later(config, ident)
        for ident in witnessed.resume(config) if config.witness is not None else ():
            witnessed.run_later(config, ident)
        deliverer = Deliverer(config.database).start() if config.webhooks else None
        sweeper = uploads.Sweeper(config).start()  # leases renewed; what a killed worker left verifying taken up
        yield
        sweeper.close()
        if deliverer is not None:
            deliverer.close()
        config.database.dispose()

    app = _Service(title="usine labelling agency", version="1",
                  description="Vendors submit evidence bundles and follow their submissions; the public reads the "
                              "registry, signed labels, the signed revocation list and the export; the payment "
                              "agency pulls label events (CloudEvents). Errors are RFC 9457 problem documents.",
                  lifespan=lifespan,
                  # no Swagger UI or ReDoc pages: FastAPI's load their scripts from a CDN, unpinned, into this
                  # origin, where staff sessions live (a CDN's script would act as the signed-in reviewer); the
                  # description is /openapi.json, for any OpenAPI viewer
                  docs_url=None, redoc_url=None)
    app.state.config = config
    app.state.signing_key = agency_signing_key(config.key_path)
    install_handlers(app)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
            return respond(request, HTTPProblem(401, "unauthenticated", exc.reason or "sign in first"))
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def _password(request: Request, exc: PasswordChangeRequired) -> Response:
        if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
            return respond(request, HTTPProblem(403, "password-change-required", "your password was set by an "
                                                "administrator: change it first (/password); nothing was done"))
        return RedirectResponse("/password", status_code=303)

    app.add_middleware(HeadAsGet)
    app.security_headers = {"hsts": config.secure_cookies, "timing": config.server_timing}

    @app.get("/static/style.css", include_in_schema=False)
    def style() -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        with Registry(config.database) as reg:
            reg.db.execute("SELECT 1").fetchone()
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(staff_api.router)
    app.include_router(web.router)
    app.include_router(admin.router)
    return app
