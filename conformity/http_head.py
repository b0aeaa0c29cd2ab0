"""HEAD answered as GET without its body (RFC 9110 §9.3.2: a general-purpose server supports both methods), for the
sandbox and the agency service alike: FastAPI's routes match GET only, so a HEAD was 405 — while the 405 answers
themselves list HEAD in Allow for every GET path (Starlette's routes)."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


def as_get(scope: Scope) -> Scope:
    """The scope the routes see: a HEAD's as a GET, in a copy — the server keeps its own scope, says HEAD, and so
    sends the answer's head without its body (uvicorn drops a HEAD's body)."""
    if scope["type"] == "http" and scope["method"] == "HEAD":
        return {**scope, "method": "GET"}
    return scope


class HeadAsGet:
    """A middleware: the app below sees a HEAD as a GET (:func:`as_get`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        await self.app(as_get(scope), receive, send)
