"""Address geocoder (BAN-like): free-text search answering GeoJSON features with score, type and key.

``GET /s/{sid}/geocoder/search?q=...&limit=n`` (open, like the national address API; every exchange is
recorded in the session's trace). The query is compared with the session's addresses case- and
accent-insensitively; the answer is a GeoJSON ``FeatureCollection`` whose features carry ``label``,
``score`` (0–1), ``type`` (``housenumber``, ``street``…), ``id`` (the interoperability key
``cle_interop``, ``{INSEE}_{street}_{number}``) and ``citycode``. An unknown address: no feature.

Problem codes: ``query-invalid`` (422: fewer than 3 characters, or more than 200), ``filter-unknown`` (422),
``service-unavailable`` (503, fault ``geocoder.unavailable``), ``rate-limited`` (429).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from fastapi import APIRouter, Request

from sandbox.deps import get_session, raise_if_unavailable
from sandbox.problems import HTTPProblem, set_outcome

SERVICE = "geocoder"
#: the requests network faults hit
NETWORK_METHODS = ("GET",)
router = APIRouter(tags=["geocoder"])


def simplify(text: str) -> str:
    """How queries compare: no accents, lower case, single spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(folded.lower().replace(",", " ").split())


def feature(address: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [address["lon"], address["lat"]]},
        "properties": {
            "label": address["label"],
            "score": address["score"],
            "type": address["type"],
            "id": address["cle_interop"],
            "citycode": address["citycode"],
        },
    }


def search(fixtures: dict[str, Any], query: str) -> list[dict[str, Any]]:
    wanted = simplify(query)
    return [feature(a) for a in fixtures.get("addresses", ()) if simplify(a["query"]) == wanted]


@router.get("/search", summary="Geocode an address (GeoJSON features with score, type and cle_interop)")
def get_search(request: Request, session_id: str, q: str = "", limit: int = 5) -> dict[str, Any]:
    unknown = sorted(set(request.query_params) - {"q", "limit"})
    if unknown:
        raise HTTPProblem(422, "filter-unknown", f"unknown parameter(s) {', '.join(unknown)}; search takes q and limit")
    session = get_session(request, session_id)
    raise_if_unavailable(request, session, SERVICE, "the geocoder")
    if not 3 <= len(q.strip()) <= 200:
        raise HTTPProblem(422, "query-invalid", "q must have 3 to 200 characters")
    found = search(session["fixtures"], q)[: max(1, min(limit, 20))]
    set_outcome(
        request,
        "geocoded" if found else "geocoded-nothing",
        count=len(found),
        **({"type": found[0]["properties"]["type"], "score": found[0]["properties"]["score"]} if found else {}),
    )
    return {"type": "FeatureCollection", "query": q, "features": found}
