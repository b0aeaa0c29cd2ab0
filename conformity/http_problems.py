"""RFC 9457 problem documents: the one exception and answer every HTTP service of usine raises (sandbox, agency).

A route raises ``HTTPProblem(status, code, detail)``; the service's handler answers it with
:func:`problem_json` — ``application/problem+json`` whose ``type`` is the service's namespace followed by
the stable code (``urn:usine:problem:`` for the sandbox, ``urn:usine:agency:problem:`` for the agency),
``title``, ``status``, ``detail``, ``code``, ``instance`` (the path) and the extra members given (e.g.
``problems``, ``errors``). The headers a problem carries (``Allow``, ``WWW-Authenticate``,
``Retry-After``) are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match

MEDIA_TYPE = "application/problem+json"
NAMESPACE = "urn:usine:problem:"


class HTTPProblem(Exception):
    """An error answer: HTTP status, stable code, human detail, optional title, headers and extra members."""

    def __init__(self, status: int, code: str, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.title = title or code.replace("-", " ").capitalize()
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str = "", namespace: str = NAMESPACE) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": namespace + self.code, "title": self.title, "status": self.status,
                               "detail": self.detail, "code": self.code}
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


def problem_json(problem: HTTPProblem, instance: str = "", namespace: str = NAMESPACE) -> JSONResponse:
    """The ``application/problem+json`` answer of a problem (its status and headers)."""
    return JSONResponse(problem.body(instance, namespace), status_code=problem.status, headers=problem.headers,
                        media_type=MEDIA_TYPE)


def media_type(request: Request) -> str:
    """The request's declared media type, without parameters, lower case ("" when untyped)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json_media(request: Request) -> bool:
    """Whether the body is declared as JSON: ``application/json`` or any ``*+json``."""
    media = media_type(request)
    return media == "application/json" or media.endswith("+json")


def declared_charset(request: Request) -> str | None:
    """The ``charset`` parameter of the request's Content-Type, lower case and unquoted (None when absent)."""
    for param in request.headers.get("content-type", "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def require_json_media(request: Request) -> None:
    """415 ``unsupported-media-type`` unless the body is declared as JSON (``application/json`` or ``*+json``) in UTF-8
    (RFC 8259 §8.1: JSON exchanged between systems is UTF-8; a charset other than UTF-8 is refused, never decoded):
    one rule for every JSON body of every service, before the body is read (RFC 9110 §15.5.16)."""
    if not is_json_media(request):
        media = media_type(request)
        raise HTTPProblem(415, "unsupported-media-type", f"the body must be application/json, not {media or 'untyped'}")
    charset = declared_charset(request)
    if charset is not None and charset not in ("utf-8", "utf8"):
        raise HTTPProblem(415, "unsupported-media-type", f"a JSON body is UTF-8 (RFC 8259 §8.1), not charset={charset}")


def utf8_problem(body: bytes) -> str | None:
    """Why ``body`` is not UTF-8 JSON text (what and where), or None. Python's ``json.loads`` of bytes reads UTF-16 and
    UTF-32 too — with or without a byte order mark: ``{"a"`` in UTF-16-LE is valid UTF-8, NULs between its letters —
    and a leading byte order mark, where JSON is UTF-8 without one (RFC 8259 §8.1): a body other readers refuse."""
    read_as = json.detect_encoding(body[:4])
    if read_as != "utf-8":
        return (f"the body is not UTF-8 JSON (RFC 8259 §8.1): it reads as {read_as}"
                + (" (a byte order mark, which JSON text never starts with)" if read_as == "utf-8-sig" else ""))
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the body is not UTF-8 (RFC 8259 §8.1): byte 0x{body[exc.start]:02x} at offset {exc.start} ({exc.reason})"
    return None
#: the methods a 405's ``Allow`` may list
METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(routes: Iterable[BaseRoute], scope: Mapping[str, Any]) -> list[str]:
    """Every method some route serves at this request's path (HEAD with GET): a 405's ``Allow`` (RFC 9110 §10.2.1),
    which lists the methods of the target resource, not only those of the first route that matched its path. Each
    method is tried against the routes as the router would (included routers too)."""
    methods = {m for m in METHODS if any(route.matches({**scope, "method": m})[0] == Match.FULL for route in routes)}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
