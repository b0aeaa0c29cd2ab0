"""Patient identity service (INSi-like): the national health identifier from the five strict traits.

``POST /s/{sid}/insi/lookup`` (access token) with the five strict traits, already normalised by the
caller (PATIENTID-002/003: upper case, no diacritics, only A-Z, space, hyphen, apostrophe). The
traits are compared by equality with the registry of the session (``fixtures.registry_entries``):

* one entry → ``{"outcome": "match", "identity": {"ins", "oid", "traits"}}`` (traits as registered);
* none → ``{"outcome": "no_match"}``; several → ``{"outcome": "multiple", "count": n}`` — never an
  identity for these two (PATIENTID-006/007).

Callers identify their software in the ``User-Agent`` header: ``<name>/<version> (<registration id>)``
(PATIENTID-012; the check ``client.software_identified`` looks for the three declared values).

Problem codes: ``traits-not-normalised`` (422, ``traits`` names them), ``invalid-request`` (422),
``unsupported-media-type`` (415), ``json-malformed`` (400),
``service-unavailable`` (503 + Retry-After, fault ``insi.unavailable``), and the token codes of
:func:`sandbox.deps.require_access_token`. Fault ``insi.ins`` (``short_ins`` or ``wrong_oid``) makes
single matches carry an INS out of format, for software that must reject it (PATIENTID-009).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conformity.packs.health.ins import normalise_name, normalise_traits
from sandbox.deps import Caller, fault, lean_json, raise_if_unavailable, read_json, require_access_token
from sandbox.packs.health.fixtures import registry_entries
from sandbox.parsed import derived
from sandbox.problems import HTTPProblem, set_outcome

router = APIRouter(tags=["insi"])

NAME_TRAITS = ("birth_name", "first_names")


class LookupRequest(BaseModel):
    """The five strict traits, normalised."""

    model_config = ConfigDict(extra="forbid")
    birth_name: str = Field(..., min_length=1, max_length=100, description="Birth name, normalised.")
    first_names: str = Field(..., min_length=1, max_length=100,
                             description="Birth first names in civil-registry order, normalised.")
    birth_date: str = Field(..., pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="YYYY-MM-DD.")
    sex: Literal["M", "F", "U"]
    birth_place_code: str = Field(..., pattern=r"^[0-9][0-9AB][0-9]{3}$",
                                  description="INSEE code of the birth place (99xxx abroad).")

    @field_validator("birth_date")
    @classmethod
    def _real_date(cls, value: str) -> str:
        dt.date.fromisoformat(value)  # raises ValueError for 2023-02-29 and the like
        return value


def not_normalised(traits: dict[str, str]) -> list[str]:
    """The name traits that differ from their normalised form."""
    return [name for name in NAME_TRAITS if traits[name] != normalise_name(traits[name])]


def registry_by_traits(fixtures: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """The registry of a session, each entry with its traits normalised for comparison."""
    return [(normalise_traits(e["registered_traits"]), e) for e in registry_entries(fixtures)]


def lookup(fixtures: dict[str, Any], traits: dict[str, str]) -> dict[str, Any]:
    """The answer of the registry of a session for normalised traits (the registry normalised once per session
    fixtures a request reads, not at each look-up: :func:`sandbox.parsed.derived`)."""
    wanted = normalise_traits(traits)
    found = [e for normalised, e in derived(fixtures, registry_by_traits) if normalised == wanted]
    if not found:
        return {"outcome": "no_match"}
    if len(found) > 1:
        return {"outcome": "multiple", "count": len(found)}
    entry = found[0]
    return {"outcome": "match",
            "identity": {"ins": entry["ins"], "oid": entry["oid"], "traits": dict(entry["registered_traits"])}}


@router.post("/lookup", summary="Look a patient's INS up from the five strict traits",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": LookupRequest.model_json_schema()}}}})
async def post_lookup(request: Request, session_id: str,
                      caller: Caller = Depends(require_access_token)) -> dict[str, Any]:
    raise_if_unavailable(request, caller.session, "insi", "the patient identity service")
    traits = (await read_json(request, LookupRequest)).model_dump()
    wrong = not_normalised(traits)
    if wrong:
        raise HTTPProblem(422, "traits-not-normalised",
                      f"traits must be normalised (upper case, no diacritics, A-Z space - ' only): {', '.join(wrong)}",
                      traits=wrong, expected={name: normalise_name(traits[name]) for name in wrong})
    answer = lookup(caller.session["fixtures"], traits)
    malformed = fault(caller.session, "insi").get("ins")
    details: dict[str, Any] = {}
    if malformed and answer["outcome"] == "match":
        answer["identity"] |= malformed_ins(answer["identity"], malformed)
        details["fault"] = malformed
    set_outcome(request, f"lookup-{answer['outcome'].replace('_', '-')}", **details)
    return answer


#: the routes served lean (:func:`sandbox.app.lean_routes`): (method, path) → (the endpoint it stands for, handler);
#: a run looks its patient up before most submissions
LEAN_ROUTES = {("POST", "/lookup"): (post_lookup, lean_json(post_lookup, require_access_token))}


def malformed_ins(identity: dict[str, Any], fault_name: str) -> dict[str, str]:
    """The INS or OID a malformed answer carries instead: the NIR without its key, or a non-INS OID."""
    if fault_name == "short_ins":
        return {"ins": identity["ins"][:13]}
    return {"oid": "1.2.250.1.71.4.2.1"}  # an assigning authority that is not an INS one (RPPS-like)
