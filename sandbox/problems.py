"""RFC 9457 problem documents with stable codes: every error the sandbox answers.

A service raises ``HTTPProblem(status, code, detail)`` (``conformity.http_problems``, shared with the
agency service); the handler answers
``application/problem+json`` with ``type`` = ``urn:usine:problem:<code>`` and records the code
as the validation outcome of the exchange in the session trace. The headers a problem carries
are kept (``Allow`` on 405, ``WWW-Authenticate`` on 401, ``Retry-After`` on 429/503).

One rule for bad input on every router (RFC 9110 §15.5):

* **415** ``unsupported-media-type`` — the body's ``Content-Type`` is not one the operation takes;
* **400** — something cannot be parsed in its declared syntax: the body (``json-malformed``: not
  JSON, not UTF-8, nested too deeply) or a document it carries (base64 content, a CDA's XML), or it
  can be read two ways: an object naming a member twice (``duplicate-member``), a query naming a
  parameter twice (``query-param-repeated``), a single-valued header given twice (``header-repeated``:
  ``Authorization``, ``Consent-Id``, ``Content-Type``);
* **422** — everything parsed, but a value is missing, of the wrong type or breaks a rule: body
  members (``invalid-request`` with ``errors``: where and why), query and path parameters, and each
  service's own rules (``traits-not-normalised``, ``document-invalid``, ``filter-unknown``…).

The identity provider's OAuth endpoints answer as RFC 6749 says instead (400 ``invalid_request``
JSON at the token endpoint, errors in the redirect after the redirect URI is trusted).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from conformity.http_problems import MEDIA_TYPE, NAMESPACE, HTTPProblem, allowed_methods, is_json_media, problem_json

PROBLEM_TYPE = NAMESPACE
__all__ = ["MEDIA_TYPE", "PROBLEM_TYPE", "HTTPProblem", "allowed_methods", "install_handlers", "problem_response",
           "recording_full", "set_outcome"]


def recording_full(session_id: str, limit: int) -> HTTPProblem:
    """413 ``session-recording-full``: the session made the sandbox keep its bound (``limit`` bytes) already; nothing
    more of it is recorded."""
    return HTTPProblem(413, "session-recording-full", f"test session {session_id} has recorded {limit} bytes, the most "
                                                      "this sandbox keeps of one session: start a new session",
                       limit=limit)


def set_outcome(request: Request, outcome: str, **details: Any) -> None:
    """Record the validation outcome of this exchange (read by the recording middleware)."""
    request.state.outcome = outcome
    if details:
        request.state.outcome_details = details


def problem_response(request: Request, problem: HTTPProblem) -> JSONResponse:
    set_outcome(request, problem.code, **({"detail": problem.detail} | problem.extra))
    return problem_json(problem, request.url.path)


def install_handlers(app: FastAPI) -> None:
    """Every error the app can raise becomes a problem document."""

    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                  for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response(request, HTTPProblem(400, "json-malformed", "the body is not JSON", errors=errors))
        return problem_response(request, HTTPProblem(422, "invalid-request", "the request does not match the API",
                                                 errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 403: "forbidden",
                 400: "body-malformed"}  # FastAPI's 400: a body it could not decode (e.g. JSON that is not UTF-8)
        if exc.status_code == 400 and is_json_media(request):
            codes[400] = "json-malformed"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the target resource, not only the first route's (RFC 9110 §10.2.1)
            headers["Allow"] = ", ".join(allowed_methods(app.routes, request.scope))
        return problem_response(request, HTTPProblem(exc.status_code, codes.get(exc.status_code, f"http-{exc.status_code}"),
                                                 str(exc.detail), headers=headers))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - safety net
        return problem_response(request, HTTPProblem(500, "internal-error", f"unexpected {type(exc).__name__}"))
