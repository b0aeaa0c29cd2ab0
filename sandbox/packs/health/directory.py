"""The health directory (Annuaire Santé imitation): practitioners, organisations, messaging addresses.

Read-only searches over the session's fixtures, with an access token of that session:

* ``GET /practitioners`` — filters ``national_id`` (the national id, or the 11-digit RPPS alone),
  ``name`` (normalised like INS traits, partial: ``"lefebure"`` finds ``Bénard-Lefébure``),
  ``profession_code``, ``finess`` (the practitioner's organisation);
* ``GET /organisations`` — filters ``finess``, ``name`` (normalised, partial);
* ``GET /addresses`` — secure-messaging addresses, filters ``address`` (case-insensitive),
  ``national_id``, ``finess``.

Each answers a JSON list (empty when nothing matches). An unknown filter is refused
(``filter-unknown``) rather than ignored, so a misspelt filter never returns the whole directory.
Every entry says whether it is ``active`` (a retired practitioner and its address are not).
Answers carry ``Cache-Control: max-age=N`` (300 s, or the fault ``directory.max_age``) and a strong
``ETag``; a search with ``If-None-Match`` naming the current ETag answers 304 without a body
(DIRECTORY-006). Fault ``directory.unavailable = n``: the next n searches answer 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from conformity.packs.health.ins import normalise_name
from conformity.signing import canonical_json, sha256_hex
from sandbox.deps import Caller, fault, raise_if_unavailable, require_access_token
from sandbox.problems import Problem, set_outcome

SERVICE = "directory"
#: the requests network faults hit: its searches
NETWORK_METHODS = ("GET",)
MAX_FILTER = 200
MAX_AGE_SECONDS = 300

router = APIRouter(tags=["directory"])

#: the caller of a session service: an access token of that very session
SessionCaller = Annotated[Caller, Depends(require_access_token)]


# --- shared helpers (the messaging service uses these too) -------------------------------------

def address_key(address: str) -> str:
    """How addresses compare: case-insensitive, surrounding blanks ignored."""
    return address.strip().casefold()


def address_book(fixtures: dict[str, Any]) -> list[dict[str, Any]]:
    """Every secure-messaging address of a session's directory, organisations first."""
    out: list[dict[str, Any]] = []
    for org in fixtures.get("organisations", []):
        out.append({"address": org["mss_address"], "type": "organisation", "display_name": org["name"],
                    "national_id": None, "finess": org["finess"], "active": org.get("active", True)})
    for p in fixtures.get("practitioners", []):
        out.append({"address": p["mss_address"], "type": "practitioner",
                    "display_name": f"{p['given_name']} {p['family_name']}", "national_id": p["national_id"],
                    "finess": p["organisation"], "active": p.get("active", True)})
    return out


def known_addresses(fixtures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The session's address book keyed by :func:`address_key`."""
    return {address_key(a["address"]): a for a in address_book(fixtures)}


# --- searches ----------------------------------------------------------------------------------

def _only(request: Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise Problem(422, "filter-unknown", f"unknown filter(s) {', '.join(unknown)}; this search filters by "
                      f"{', '.join(allowed)}", filters=unknown)


def _name_query(name: str | None) -> str | None:
    if name is None:
        return None
    wanted = normalise_name(name)
    if not wanted:
        raise Problem(422, "filter-invalid", "the name filter has no letter left once normalised", filter="name")
    return wanted


def _open(request: Request, caller: Caller) -> dict[str, Any]:
    raise_if_unavailable(request, caller.session, SERVICE, "the directory")
    fixtures: dict[str, Any] = caller.session["fixtures"]
    return fixtures


def _answer(request: Request, caller: Caller, found: list[dict[str, Any]]) -> Response:
    """The list, with its ETag and max-age; 304 when the caller's If-None-Match names that ETag."""
    etag = '"' + sha256_hex(canonical_json(found))[:32] + '"'
    max_age = fault(caller.session, SERVICE).get("max_age")
    headers = {"ETag": etag, "Cache-Control": f"max-age={MAX_AGE_SECONDS if max_age is None else int(max_age)}"}
    wanted = [t.strip() for t in request.headers.get("if-none-match", "").split(",") if t.strip()]
    if etag in wanted or "*" in wanted:
        set_outcome(request, "search-not-modified", count=len(found))
        return Response(status_code=304, headers=headers)
    set_outcome(request, "search-answered", count=len(found))
    return JSONResponse(found, headers=headers)


def _filter(max_length: int = MAX_FILTER) -> Any:
    return Query(None, min_length=1, max_length=max_length)


@router.get("/practitioners", summary="Search practitioners")
def practitioners(request: Request, caller: SessionCaller,
                  national_id: str | None = _filter(), name: str | None = _filter(),
                  profession_code: str | None = _filter(), finess: str | None = _filter()) -> Response:
    _only(request, ("national_id", "name", "profession_code", "finess"))
    wanted_name = _name_query(name)
    fixtures = _open(request, caller)
    found = []
    for p in fixtures.get("practitioners", []):
        if national_id is not None and national_id.strip() not in (p["national_id"], p["rpps"]):
            continue
        if profession_code is not None and profession_code.strip() != p["profession_code"]:
            continue
        if finess is not None and finess.strip() != p["organisation"]:
            continue
        if wanted_name is not None:
            names = (normalise_name(f"{p['family_name']} {p['given_name']}"),
                     normalise_name(f"{p['given_name']} {p['family_name']}"))
            if not any(wanted_name in n for n in names):
                continue
        found.append(dict(p) | {"active": p.get("active", True)})
    return _answer(request, caller, found)


@router.get("/organisations", summary="Search organisations")
def organisations(request: Request, caller: SessionCaller,
                  finess: str | None = _filter(), name: str | None = _filter()) -> Response:
    _only(request, ("finess", "name"))
    wanted_name = _name_query(name)
    fixtures = _open(request, caller)
    found = [dict(o) | {"active": o.get("active", True)} for o in fixtures.get("organisations", [])
             if (finess is None or finess.strip() == o["finess"])
             and (wanted_name is None or wanted_name in normalise_name(o["name"]))]
    return _answer(request, caller, found)


@router.get("/addresses", summary="Search secure-messaging addresses")
def addresses(request: Request, caller: SessionCaller,
              address: str | None = _filter(320), national_id: str | None = _filter(),
              finess: str | None = _filter()) -> Response:
    _only(request, ("address", "national_id", "finess"))
    fixtures = _open(request, caller)
    found = [a for a in address_book(fixtures)
             if (address is None or address_key(address) == address_key(a["address"]))
             and (national_id is None or national_id.strip() == a["national_id"])
             and (finess is None or finess.strip() == a["finess"])]
    return _answer(request, caller, found)
