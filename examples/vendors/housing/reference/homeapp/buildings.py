"""Locating a home: geocoding (BAN-like), the building registry (RNB-like), identifiers normalised."""

from __future__ import annotations

import re
from typing import Any

from homeapp import defects
from homeapp.context import App, ServiceError

ALPHABET = "123456789ABCDEFGHJKMNPQRSTVWXYZ"
MIN_SCORE = 0.45
WARN_SCORE = 0.7
AS_TYPED = defects.register("rnb-as-typed", "checks an RNB id but sends it to the registry as the user typed it")
IGNORE_TYPE = defects.register(
    "ignores-geocoding-type", "uses any geocoder result, even one found only at street level"
)


def normalise_rnb(value: str) -> str | None:
    compact = re.sub(r"[\s-]", "", value).upper()
    return compact if len(compact) == 12 and all(c in ALPHABET for c in compact) else None


def geocode(app: App, address: str) -> dict[str, Any] | None:
    r = app.call("GET", "geocoder", "/search", auth=False, params={"q": address, "limit": 1})
    if r.status_code != 200:
        raise ServiceError(f"geocoder answered {r.status_code}")
    features = r.json().get("features") or []
    if not features:
        return None
    props = dict(features[0].get("properties") or {})
    return {
        "cle_interop": props.get("id"),
        "type": props.get("type"),
        "score": props.get("score"),
        "citycode": props.get("citycode"),
        "label": props.get("label"),
    }


def by_address(app: App, address: str) -> dict[str, Any]:
    """The building at an address, with the geocoding it rests on (``location``)."""
    found = geocode(app, address)
    if found is None:
        return {"status": "no_result"}
    result: dict[str, Any] = {"cle_interop": found["cle_interop"], "score": found["score"], "location": found}
    if found["type"] != "housenumber" and not defects.active(IGNORE_TYPE):
        return result | {"status": "incomplete"}
    if isinstance(found["score"], (int, float)) and found["score"] < WARN_SCORE:
        result["warnings"] = ["low_score"]
    r = app.call(
        "GET",
        "buildings",
        "/buildings",
        auth=False,
        params={"cle_interop": found["cle_interop"], "min_score": MIN_SCORE},
    )
    if r.status_code != 200:
        raise ServiceError(f"building registry answered {r.status_code}")
    body = r.json()
    if body.get("status") != "ok" or len(body.get("buildings", [])) != 1:
        return result | {"status": body.get("status") if body.get("status") != "ok" else "no_result"}
    return result | {"status": "ok", "rnb_id": body["buildings"][0]["rnb_id"]}


def by_id(app: App, typed: str) -> dict[str, Any]:
    rnb = normalise_rnb(typed)
    if rnb is None:
        return {"status": "invalid", "error": f"{typed!r} is not an RNB building id"}
    if defects.active(AS_TYPED):
        rnb = typed
    r = app.call("GET", "buildings", f"/buildings/{rnb}", auth=False)
    if r.status_code == 404:
        return {"status": "no_result"}
    if r.status_code != 200:
        return {"status": "error", "rnb_id": rnb, "error": f"registry answered {r.status_code}"}
    return {"status": "ok", "rnb_id": r.json()["rnb_id"]}


def by_parcel(app: App, parcel: str) -> dict[str, Any]:
    r = app.call("GET", "buildings", "/buildings", auth=False, params={"parcel": parcel})
    if r.status_code != 200:
        raise ServiceError(f"building registry answered {r.status_code}")
    found = r.json().get("buildings", [])
    return {"status": "ok", "rnb_id": found[0]["rnb_id"]} if len(found) == 1 else {"status": "no_result"}


def identify(app: App, data: dict[str, Any]) -> dict[str, Any]:
    try:
        if "rnb_id" in data:
            return by_id(app, data["rnb_id"])
        if "parcel" in data:
            return by_parcel(app, data["parcel"])
        out = by_address(app, data["address"])
    except ServiceError as exc:
        return {"status": "error", "error": str(exc)}
    out.pop("location", None)
    return {k: v for k, v in out.items() if v is not None}
