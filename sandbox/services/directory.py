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
Fault ``directory.unavailable = n``: the next n searches answer 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from conformity.packs.health.ins import normalise_name
from sandbox.deps import Caller, require_access_token, store_of
from sandbox.problems import Problem, set_outcome
from sandbox.store import Store

SERVICE = "directory"
RETRY_AFTER_SECONDS = 1
MAX_FILTER = 200

router = APIRouter(tags=["directory"])

#: the caller of a session service: an access token of that very session
SessionCaller = Annotated[Caller, Depends(require_access_token)]


# --- shared helpers (the messaging service uses these too) -------------------------------------

def take_unavailable(store: Store, session_id: str, service: str) -> bool:
    """Consume one ``unavailable`` fault of ``service`` atomically; True if this call must answer 503."""
    hit = False

    def change(session: dict[str, Any]) -> None:
        nonlocal hit
        spec = session.get("faults", {}).get(service)
        if not spec or not isinstance(spec.get("unavailable"), int) or spec["unavailable"] <= 0:
            return
        hit = True
        spec["unavailable"] -= 1
        if spec["unavailable"] == 0:
            del spec["unavailable"]
            if not spec:
                del session["faults"][service]

    store.update_session(session_id, change)
    return hit


def unavailable_problem(service: str) -> Problem:
    return Problem(503, "service-unavailable", f"the {service} service is temporarily unavailable (injected fault)",
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, retry_after=RETRY_AFTER_SECONDS)


def address_key(address: str) -> str:
    """How addresses compare: case-insensitive, surrounding blanks ignored."""
    return address.strip().casefold()


def address_book(fixtures: dict[str, Any]) -> list[dict[str, Any]]:
    """Every secure-messaging address of a session's directory, organisations first."""
    out: list[dict[str, Any]] = []
    for org in fixtures.get("organisations", []):
        out.append({"address": org["mss_address"], "type": "organisation", "display_name": org["name"],
                    "national_id": None, "finess": org["finess"]})
    for p in fixtures.get("practitioners", []):
        out.append({"address": p["mss_address"], "type": "practitioner",
                    "display_name": f"{p['given_name']} {p['family_name']}", "national_id": p["national_id"],
                    "finess": p["organisation"]})
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
    if take_unavailable(store_of(request), caller.session["id"], SERVICE):
        raise unavailable_problem(SERVICE)
    fixtures: dict[str, Any] = caller.session["fixtures"]
    return fixtures


def _answer(request: Request, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    set_outcome(request, "search-answered", count=len(found))
    return found


def _filter(max_length: int = MAX_FILTER) -> Any:
    return Query(None, min_length=1, max_length=max_length)


@router.get("/practitioners", summary="Search practitioners")
def practitioners(request: Request, caller: SessionCaller,
                  national_id: str | None = _filter(), name: str | None = _filter(),
                  profession_code: str | None = _filter(), finess: str | None = _filter()) -> list[dict[str, Any]]:
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
        found.append(dict(p))
    return _answer(request, found)


@router.get("/organisations", summary="Search organisations")
def organisations(request: Request, caller: SessionCaller,
                  finess: str | None = _filter(), name: str | None = _filter()) -> list[dict[str, Any]]:
    _only(request, ("finess", "name"))
    wanted_name = _name_query(name)
    fixtures = _open(request, caller)
    found = [dict(o) for o in fixtures.get("organisations", [])
             if (finess is None or finess.strip() == o["finess"])
             and (wanted_name is None or wanted_name in normalise_name(o["name"]))]
    return _answer(request, found)


@router.get("/addresses", summary="Search secure-messaging addresses")
def addresses(request: Request, caller: SessionCaller,
              address: str | None = _filter(320), national_id: str | None = _filter(),
              finess: str | None = _filter()) -> list[dict[str, Any]]:
    _only(request, ("address", "national_id", "finess"))
    fixtures = _open(request, caller)
    found = [a for a in address_book(fixtures)
             if (address is None or address_key(address) == address_key(a["address"]))
             and (national_id is None or national_id.strip() == a["national_id"])
             and (finess is None or finess.strip() == a["finess"])]
    return _answer(request, found)
