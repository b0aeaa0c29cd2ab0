"""Action directory.search, and RefApp's directory client: searches with an HTTP cache.

The cache keeps each answer for its ``Cache-Control: max-age`` and revalidates it afterwards with
``If-None-Match`` and its ``ETag`` (DIRECTORY-006). Names are sent upper-cased without diacritics
(DIRECTORY-002); every entry the directory returns is shown, inactive ones marked so (DIRECTORY-005).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from refapp.actions import action
from refapp.app import Application
from refapp.identity import normalise_name


class DirectoryError(Exception):
    """The directory did not answer a search."""


@dataclass
class Cached:
    body: Any
    etag: str | None
    max_age: float
    fetched: float

    def fresh(self, now: float) -> bool:
        return now - self.fetched < self.max_age


def max_age(cache_control: str) -> float:
    """The max-age of a Cache-Control header (0 when absent, or no-store / no-cache)."""
    if re.search(r"\b(no-store|no-cache)\b", cache_control):
        return 0.0
    m = re.search(r"\bmax-age=(\d+)", cache_control)
    return float(m[1]) if m else 0.0


@dataclass
class Directory:
    """Searches of the session's directory, cached per query as HTTP says."""

    app: Application
    cache: dict[tuple[str, tuple[tuple[str, str], ...]], Cached] = field(default_factory=dict)

    def get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        key = (path, tuple(sorted(params.items())))
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached is not None and cached.fresh(now):
            return cached.body
        headers = self.app.auth_headers()
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        url = self.app.ctx.endpoints["directory"].rstrip("/") + path
        try:
            with self.app.ctx.http() as http:
                r = http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise DirectoryError(f"directory unreachable: {type(exc).__name__}") from exc
        if r.status_code == 304 and cached is not None:
            cached.fetched, cached.max_age = now, max_age(r.headers.get("cache-control", ""))
            cached.etag = r.headers.get("etag", cached.etag)
            return cached.body
        if r.status_code != 200:
            raise DirectoryError(f"directory answered {r.status_code}")
        body = r.json()
        self.cache[key] = Cached(body, r.headers.get("etag"), max_age(r.headers.get("cache-control", "")), now)
        return body

    def address(self, address: str) -> dict[str, Any] | None:
        """The directory entry of a messaging address, or None when the directory does not list it."""
        found = self.get("/addresses", {"address": address})
        return found[0] if found else None


def directory(app: Application) -> Directory:
    """The application's directory client (one cache per session)."""
    if "directory" not in app.ctx.state:
        app.ctx.state["directory"] = Directory(app)
    return app.ctx.state["directory"]


def practitioner_result(p: dict[str, Any]) -> dict[str, Any]:
    out = {"kind": "practitioner", "id": p["national_id"], "name": f"{p['given_name']} {p['family_name']}",
           "profession": p.get("profession", ""), "active": bool(p.get("active", True)),
           "addresses": [p["mss_address"]] if p.get("mss_address") else []}
    if p.get("specialty"):
        out["specialty"] = p["specialty"]
    return out


def organisation_result(o: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "organisation", "id": o["finess"], "name": o["name"], "active": bool(o.get("active", True)),
            "addresses": [o["mss_address"]] if o.get("mss_address") else []}


def address_result(a: dict[str, Any]) -> dict[str, Any]:
    return {"kind": a["type"], "id": a["national_id"] or a["finess"], "name": a["display_name"],
            "active": bool(a.get("active", True)), "addresses": [a["address"]]}


@action("directory.search")
def directory_search(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    client = directory(app)
    try:
        if "national_id" in data:
            results = [practitioner_result(p) for p in client.get("/practitioners", {"national_id": data["national_id"]})]
        elif "family_name" in data:
            name = normalise_name(data["family_name"])
            if data.get("given_name"):
                name += " " + normalise_name(data["given_name"])
            results = [practitioner_result(p) for p in client.get("/practitioners", {"name": name})]
        elif "organisation_id" in data:
            results = [organisation_result(o) for o in client.get("/organisations", {"finess": data["organisation_id"]})]
        else:
            results = [address_result(a) for a in client.get("/addresses", {"address": data["address"]})]
    except DirectoryError as exc:
        return {"results": [], "error": str(exc)[:500]}
    return {"results": results}
