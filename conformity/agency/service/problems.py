"""RFC 9457 problem documents: every error the service's API answers (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from conformity.errors import InputError

PROBLEM_TYPE = "urn:usine:agency:problem:"
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answer: HTTP status, a stable code, what is wrong; extra members (e.g. ``problems``)."""

    def __init__(self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str = "") -> dict[str, Any]:
        doc = {"type": PROBLEM_TYPE + self.code, "title": self.code.replace("-", " ").capitalize(),
               "status": self.status, "detail": self.detail, **({"instance": instance} if instance else {})}
        return doc | self.extra


def from_input_error(exc: InputError, status: int = 422, code: str = "refused") -> Problem:
    """A refusal of the agency's vocabulary (nothing recorded), with every problem it listed."""
    return Problem(status, code, exc.render(), problems=[str(p) for p in exc.problems])


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def respond(request: Request, problem: Problem) -> Response:
    """A problem document for the API and for clients asking JSON; a small page for browsers."""
    if _wants_html(request):
        from conformity.agency.service.web import error_page

        return error_page(request, problem)
    return JSONResponse(problem.body(request.url.path), status_code=problem.status, headers=problem.headers,
                        media_type=MEDIA_TYPE)


def install_handlers(app: FastAPI) -> None:
    """Every error the app can raise becomes a problem document (or its page)."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return respond(request, exc)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        return respond(request, from_input_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return respond(request, Problem(422, "invalid-request", "; ".join(errors) or "invalid request", problems=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return respond(request, Problem(exc.status_code, code, str(exc.detail)))


__all__ = ["HTMLResponse", "Problem", "from_input_error", "install_handlers", "respond"]
