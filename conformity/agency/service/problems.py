"""RFC 9457 problem documents: every error the service's API answers (``application/problem+json``)."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from conformity.errors import InputError, Problem
from conformity.http_problems import MEDIA_TYPE, HTTPProblem, allowed_methods, problem_json

PROBLEM_TYPE = "urn:usine:agency:problem:"


def shown(exc: InputError) -> InputError:
    """An error as the service answers it: a problem in a file of the agency's server (an absolute path: the registry,
    its data folder) says what is wrong without naming that file (the audit log keeps the full text)."""
    return InputError([Problem("", p.where, p.message) if os.path.isabs(p.file) else p for p in exc.problems])


def from_input_error(exc: InputError, status: int = 422, code: str = "refused") -> HTTPProblem:
    """A refusal of the agency's vocabulary (nothing recorded), with every problem it listed."""
    exc = shown(exc)
    return HTTPProblem(status, code, exc.render(), problems=[str(p) for p in exc.problems])


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def respond(request: Request, problem: HTTPProblem) -> Response:
    """A problem document for the API and for clients asking JSON; a small page for browsers."""
    if _wants_html(request):
        from conformity.agency.service.web import error_page

        return error_page(request, problem)
    return problem_json(problem, request.url.path, PROBLEM_TYPE)


def install_handlers(app: FastAPI) -> None:
    """Every error the app can raise becomes a problem document (or its page)."""

    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> Response:
        return respond(request, exc)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        return respond(request, from_input_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                  + (f" ({e['ctx']['error']})" if isinstance(e.get("ctx"), dict) and "error" in e["ctx"] else "")
                  for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):  # not JSON at all: 400, as in the sandbox
            return respond(request, HTTPProblem(400, "json-malformed", "the body is not JSON", problems=errors))
        return respond(request, HTTPProblem(422, "invalid-request", "; ".join(errors) or "invalid request", problems=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        headers = dict(exc.headers or {})  # WWW-Authenticate, Retry-After…: kept
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app.routes, request.scope))
        return respond(request, HTTPProblem(exc.status_code, code, str(exc.detail), headers=headers))


__all__ = ["MEDIA_TYPE", "HTMLResponse", "HTTPProblem", "from_input_error", "install_handlers", "respond", "shown"]
