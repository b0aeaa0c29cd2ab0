"""Building registry (RNB-like): buildings by id, by address key with a minimum score, by cadastral parcel.

Open like the national registry's API; every exchange is recorded in the session's trace.

* ``GET /buildings/{rnb_id}`` — the 12-character id as the registry writes it (upper case, no dashes):
  ``XXXX-YYYY-ZZZZ`` or lower case is refused (``rnb-id-not-normalised``, with the expected form), an id
  with a character outside the alphabet too (``rnb-id-invalid``); 404 ``building-unknown``.
* ``GET /buildings?cle_interop=K&min_score=S`` — ``{"status": "ok", "buildings": [...]}``,
  ``{"status": "no_result"}`` or ``{"status": "score_too_low", "score": s}`` when the address's
  geocoding score is under ``min_score`` (default 0: any).
* ``GET /buildings?parcel=P`` — ``{"status": "ok" | "no_result", "buildings": [...]}``.

Problem codes: ``filter-unknown``, ``filter-missing`` (422), ``service-unavailable`` (503, fault
``buildings.unavailable``) and the network faults of every service.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conformity.packs.housing.rules import is_ban_key, normalise_rnb
from sandbox.deps import get_session, raise_if_unavailable
from sandbox.problems import HTTPProblem, set_outcome

SERVICE = "buildings"
#: the requests network faults hit
NETWORK_METHODS = ("GET",)
router = APIRouter(tags=["buildings"])


def _public(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "rnb_id": b["rnb_id"],
        "status": b["status"],
        "addresses": [{"cle_interop": b["cle_interop"], "label": b["address"]}],
        "parcels": [b["parcel"]],
    }


@router.get("/buildings/{rnb_id}", summary="A building by its RNB id (12 characters, upper case, no dashes)")
def get_building(request: Request, session_id: str, rnb_id: str) -> dict[str, Any]:
    session = get_session(request, session_id)
    raise_if_unavailable(request, session, SERVICE, "the building registry")
    normal = normalise_rnb(rnb_id)
    if normal is None:
        raise HTTPProblem(
            422,
            "rnb-id-invalid",
            f"{rnb_id!r} is not an RNB id (12 characters of {len('123456789ABCDEFGHJKMNPQRSTVWXYZ')} allowed ones)",
        )
    if normal != rnb_id:
        raise HTTPProblem(
            422, "rnb-id-not-normalised", f"write the RNB id as {normal} (upper case, no dashes)", expected=normal
        )
    found = [b for b in session["fixtures"].get("buildings", ()) if b["rnb_id"] == rnb_id]
    if not found:
        raise HTTPProblem(404, "building-unknown", f"no building {rnb_id} in the registry")
    set_outcome(request, "building-found", rnb_id=rnb_id)
    return _public(found[0])


@router.get("/buildings", summary="Buildings at an address key (with min_score) or on a cadastral parcel")
def search_buildings(
    request: Request, session_id: str, cle_interop: str | None = None, min_score: float = 0.0, parcel: str | None = None
) -> dict[str, Any]:
    unknown = sorted(set(request.query_params) - {"cle_interop", "min_score", "parcel"})
    if unknown:
        raise HTTPProblem(422, "filter-unknown", f"unknown filter(s) {', '.join(unknown)}")
    if (cle_interop is None) == (parcel is None):
        raise HTTPProblem(422, "filter-missing", "give exactly one of cle_interop and parcel")
    if not 0 <= min_score <= 1:
        raise HTTPProblem(422, "filter-invalid", "min_score is between 0 and 1")
    session = get_session(request, session_id)
    raise_if_unavailable(request, session, SERVICE, "the building registry")
    fixtures = session["fixtures"]
    if parcel is not None:
        found = [_public(b) for b in fixtures.get("buildings", ()) if b["parcel"] == parcel.strip().upper()]
        set_outcome(request, "parcel-found" if found else "parcel-no-result", count=len(found))
        return {"status": "ok" if found else "no_result", "buildings": found}
    assert cle_interop is not None
    if not is_ban_key(cle_interop):
        raise HTTPProblem(422, "cle-interop-invalid", f"{cle_interop!r} is not a BAN interoperability key")
    address = next((a for a in fixtures.get("addresses", ()) if a["cle_interop"] == cle_interop), None)
    found = [_public(b) for b in fixtures.get("buildings", ()) if b["cle_interop"] == cle_interop]
    if address is not None and address["score"] < min_score:
        set_outcome(request, "address-score-too-low", score=address["score"], min_score=min_score)
        return {"status": "score_too_low", "score": address["score"], "buildings": []}
    set_outcome(request, "address-found" if found else "address-no-result", count=len(found), min_score=min_score)
    return {"status": "ok" if found else "no_result", "buildings": found}
