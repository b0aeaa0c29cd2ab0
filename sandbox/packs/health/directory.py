"""The health directory (Annuaire Santé imitation): practitioners, organisations, messaging addresses.

The core's directory service (:mod:`sandbox.services.directory`: access token, unknown filters refused, ETag and
``Cache-Control: max-age``, 304 on ``If-None-Match``, faults ``directory.unavailable`` and ``directory.max_age``)
configured with three searches over the session's fixtures:

* ``GET /practitioners`` — filters ``national_id`` (the national id, or the 11-digit RPPS alone),
  ``name`` (normalised like INS traits, partial: ``"lefebure"`` finds ``Bénard-Lefébure``),
  ``profession_code``, ``finess`` (the practitioner's organisation);
* ``GET /organisations`` — filters ``finess``, ``name`` (normalised, partial);
* ``GET /addresses`` — secure-messaging addresses, filters ``address`` (case-insensitive),
  ``national_id``, ``finess``.

Every entry says whether it is ``active`` (a retired practitioner and its address are not). The searches answer
with the max-age of DIRECTORY-006's rules (300 s by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformity.packs.health.ins import normalise_name
from sandbox.services.directory import DirectoryProfile, Entry, Filter, Search, field_is

# --- shared helpers (the messaging service uses these too) -------------------------------------

def address_key(address: str) -> str:
    """How addresses compare: case-insensitive, surrounding blanks ignored."""
    return address.strip().casefold()


def address_book(fixtures: Mapping[str, Any]) -> list[dict[str, Any]]:
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


def known_addresses(fixtures: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The session's address book keyed by :func:`address_key`."""
    return {address_key(a["address"]): a for a in address_book(fixtures)}


# --- the searches ------------------------------------------------------------------------------

def _active(entries: list[dict[str, Any]]) -> list[Entry]:
    return [dict(e) | {"active": e.get("active", True)} for e in entries]


def _practitioner_named(p: Entry, wanted: str) -> bool:
    names = (normalise_name(f"{p['family_name']} {p['given_name']}"),
             normalise_name(f"{p['given_name']} {p['family_name']}"))
    return any(wanted in n for n in names)


NO_LETTER = "has no letter left once normalised"

PROFILE = DirectoryProfile(service="directory", what="the directory", searches=(
    Search("practitioners", "Search practitioners",
           lambda fixtures: _active(fixtures.get("practitioners", [])),
           (Filter("national_id", field_is("national_id", "rpps")),
            Filter("name", _practitioner_named, prepare=normalise_name, invalid=NO_LETTER),
            Filter("profession_code", field_is("profession_code")),
            Filter("finess", field_is("organisation")))),
    Search("organisations", "Search organisations",
           lambda fixtures: _active(fixtures.get("organisations", [])),
           (Filter("finess", field_is("finess")),
            Filter("name", lambda o, wanted: wanted in normalise_name(o["name"]), prepare=normalise_name,
                   invalid=NO_LETTER))),
    Search("addresses", "Search secure-messaging addresses", address_book,
           (Filter("address", lambda a, wanted: wanted == address_key(a["address"]), prepare=address_key,
                   max_length=320),
            Filter("national_id", field_is("national_id")),
            Filter("finess", field_is("finess")))),
))
