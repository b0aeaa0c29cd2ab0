"""Directory-style look-ups: read-only searches over a session's fixtures, configured by a pack.

A pack declares each directory it has as a :class:`DirectoryProfile` in its sandbox module's ``DIRECTORIES``; the
sandbox mounts it under ``/s/{session_id}/<service>`` like any service of the pack (:func:`service`). Each
:class:`Search` is one ``GET /<path>`` answering a JSON list (empty when nothing matches) of the entries its filters
all accept; every search has the same rules, whatever the pack:

* an access token of that very session is required;
* a filter the search does not have is refused (422 ``filter-unknown``) rather than ignored, so a misspelt filter
  never returns the whole directory; a filter value is 1 to ``max_length`` characters (FastAPI's 422 otherwise),
  and a filter with an ``invalid`` rule refuses a value its ``prepare`` empties (422 ``filter-invalid``);
* answers carry ``Cache-Control: max-age=N`` (the profile's ``max_age``, or the fault ``<service>.max_age``) and a
  strong ``ETag`` (a hash of the list); a search with ``If-None-Match`` naming the current ETag (or ``*``) answers
  304 without a body (outcome ``search-not-modified``, else ``search-answered``, both with the ``count``);
* fault ``<service>.unavailable = n``: the next n searches answer 503 with ``Retry-After`` (and every network fault
  of :mod:`sandbox.network` on its ``GET`` requests).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from conformity.signing import canonical_json, sha256_hex
from sandbox.deps import Caller, fault, raise_if_unavailable, require_access_token
from sandbox.faults import Fault, counted, integer
from sandbox.problems import HTTPProblem, set_outcome

#: the requests network faults hit: its searches
NETWORK_METHODS = ("GET",)
MAX_FILTER = 200
MAX_AGE_SECONDS = 300

#: the faults of every directory (beside the network faults)
FAULTS: dict[str, Fault] = {
    "unavailable": Fault("n: the next n searches answer 503 with Retry-After", counted),
    "max_age": Fault("seconds announced in Cache-Control max-age (default 300)", integer(0, 86400, "seconds")),
}

Entry = dict[str, Any]


def stripped(value: str) -> str:
    """The default preparation of a filter value: surrounding blanks ignored."""
    return value.strip()


def field_is(*keys: str) -> Callable[[Entry, str], bool]:
    """A match rule: the prepared value equals one of these fields of the entry."""
    return lambda entry, wanted: any(wanted == entry.get(k) for k in keys)


@dataclass(frozen=True, slots=True)
class Filter:
    """One query parameter of a search: how its value is prepared, and which entries it keeps."""

    name: str
    #: does the entry match the prepared value?
    match: Callable[[Entry, str], bool]
    #: the value as compared (blanks stripped by default; a normalisation, a case fold…)
    prepare: Callable[[str], str] = stripped
    max_length: int = MAX_FILTER
    #: when set, a value ``prepare`` empties is refused: "the <name> filter <invalid>"
    invalid: str | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """One look-up, ``GET /<path>``: the entries of the session's fixtures, filtered."""

    path: str
    summary: str
    #: the searched entries of a session's fixtures
    entries: Callable[[Mapping[str, Any]], list[Entry]]
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class DirectoryProfile:
    """A pack's directory: its URL name (``service``), what it is called in messages, and its searches."""

    service: str
    searches: tuple[Search, ...]
    #: the directory in error messages ("<what> is temporarily unavailable")
    what: str = "the directory"
    max_age: int = MAX_AGE_SECONDS
    faults: Mapping[str, Fault] = field(default_factory=lambda: dict(FAULTS), hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class DirectoryService:
    """A mounted directory, shaped as a pack's service module is (``router``, ``NETWORK_METHODS``)."""

    profile: DirectoryProfile
    router: APIRouter
    NETWORK_METHODS: tuple[str, ...] = NETWORK_METHODS


#: the caller of a session service: an access token of that very session
SessionCaller = Annotated[Caller, Depends(require_access_token)]


def _only(request: Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise HTTPProblem(422, "filter-unknown", f"unknown filter(s) {', '.join(unknown)}; this search filters by "
                      f"{', '.join(allowed)}", filters=unknown)


def _answer(request: Request, profile: DirectoryProfile, caller: Caller, found: list[Entry]) -> Response:
    """The list, with its ETag and max-age; 304 when the caller's If-None-Match names that ETag."""
    etag = '"' + sha256_hex(canonical_json(found))[:32] + '"'
    max_age = fault(caller.session, profile.service).get("max_age")
    headers = {"ETag": etag, "Cache-Control": f"max-age={profile.max_age if max_age is None else int(max_age)}"}
    wanted = [t.strip() for t in request.headers.get("if-none-match", "").split(",") if t.strip()]
    if etag in wanted or "*" in wanted:
        set_outcome(request, "search-not-modified", count=len(found))
        return Response(status_code=304, headers=headers)
    set_outcome(request, "search-answered", count=len(found))
    return JSONResponse(found, headers=headers)


def search(request: Request, profile: DirectoryProfile, spec: Search, caller: Caller,
           values: Mapping[str, str | None]) -> Response:
    """Answer one search: unknown filters refused, values prepared, the directory's faults, the matching entries."""
    _only(request, tuple(f.name for f in spec.filters))
    wanted: list[tuple[Filter, str]] = []
    for f in spec.filters:
        value = values.get(f.name)
        if value is None:
            continue
        prepared = f.prepare(value)
        if f.invalid is not None and not prepared:
            raise HTTPProblem(422, "filter-invalid", f"the {f.name} filter {f.invalid}", filter=f.name)
        wanted.append((f, prepared))
    raise_if_unavailable(request, caller.session, profile.service, profile.what)
    found = [e for e in spec.entries(caller.session["fixtures"]) if all(f.match(e, v) for f, v in wanted)]
    return _answer(request, profile, caller, found)


def _endpoint(profile: DirectoryProfile, spec: Search) -> Callable[..., Response]:
    """The route function of one search, its filters declared as optional query parameters (for OpenAPI)."""

    def endpoint(request: Request, caller: SessionCaller, **values: str | None) -> Response:
        return search(request, profile, spec, caller, values)

    keyword = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]  # FastAPI reads the signature
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("caller", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=SessionCaller),
        *(inspect.Parameter(f.name, keyword, annotation=str | None,
                            default=Query(None, min_length=1, max_length=f.max_length)) for f in spec.filters),
    ], return_annotation=Response)
    endpoint.__name__ = endpoint.__qualname__ = spec.path.replace("/", "_")
    return endpoint


def service(profile: DirectoryProfile) -> DirectoryService:
    """The directory's router: one ``GET /<path>`` per search."""
    router = APIRouter(tags=[profile.service])
    for spec in profile.searches:
        router.add_api_route(f"/{spec.path}", _endpoint(profile, spec), methods=["GET"], summary=spec.summary)
    return DirectoryService(profile, router)
