"""Patient identity service (INSi-like): the national health identifier from the five strict traits.

``POST /s/{sid}/insi/lookup`` (access token) with the five strict traits, already normalised by the
caller (PATIENTID-002/003: upper case, no diacritics, only A-Z, space, hyphen, apostrophe). The
traits are compared by equality with the registry of the session (``fixtures.registry_entries``):

* one entry → ``{"outcome": "match", "identity": {"ins", "oid", "traits"}}`` (traits as registered);
* none → ``{"outcome": "no_match"}``; several → ``{"outcome": "multiple", "count": n}`` — never an
  identity for these two (PATIENTID-006/007).

Problem codes: ``traits-not-normalised`` (422, ``traits`` names them), ``invalid-request`` (422),
``unsupported-media-type`` (415), ``json-malformed`` (400),
``service-unavailable`` (503 + Retry-After, fault ``insi.unavailable``), and the token codes of
:func:`sandbox.deps.require_access_token`. Fault ``insi.ins`` (``short_ins`` or ``wrong_oid``) makes
single matches carry an INS out of format, for software that must reject it (PATIENTID-009).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformity.packs.health.ins import normalise_name, normalise_traits
from sandbox.deps import Caller, fault, require_access_token, store_of
from sandbox.fixtures import registry_entries
from sandbox.problems import Problem, set_outcome

router = APIRouter(tags=["insi"])

RETRY_AFTER_SECONDS = 1
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


M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M]) -> M:
    """The body as ``model``: 415 ``unsupported-media-type``, 400 ``json-malformed``, 422 ``invalid-request``."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, "unsupported-media-type", f"the body must be application/json, not {media or 'untyped'}")
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "json-malformed", f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "json-malformed", "the body is JSON nested too deeply") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                  for e in exc.errors()]
        raise Problem(422, "invalid-request", "the body does not match the API", errors=errors) from None


def take_unavailable(request: Request, session: dict[str, Any], service: str) -> bool:
    """Consume one injected ``<service>.unavailable`` failure atomically; True when one was left.

    ``session`` is the session as read for this request: when it shows no failure left, nothing is written.
    """
    if not fault(session, service).get("unavailable"):
        return False
    fired = False

    def change(session: dict[str, Any]) -> None:
        nonlocal fired
        spec = session.get("faults", {}).get(service) or {}
        left = spec.get("unavailable") or 0
        if isinstance(left, int) and left > 0:
            spec["unavailable"] = left - 1
            fired = True

    store_of(request).update_session(session["id"], change)
    return fired


def not_normalised(traits: dict[str, str]) -> list[str]:
    """The name traits that differ from their normalised form."""
    return [name for name in NAME_TRAITS if traits[name] != normalise_name(traits[name])]


def lookup(fixtures: dict[str, Any], traits: dict[str, str]) -> dict[str, Any]:
    """The answer of the registry of a session for normalised traits."""
    wanted = normalise_traits(traits)
    found = [e for e in registry_entries(fixtures) if normalise_traits(e["registered_traits"]) == wanted]
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
    if take_unavailable(request, caller.session, "insi"):
        raise Problem(503, "service-unavailable", "the patient identity service is temporarily unavailable",
                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, retry_after=RETRY_AFTER_SECONDS)
    traits = (await read_json(request, LookupRequest)).model_dump()
    wrong = not_normalised(traits)
    if wrong:
        raise Problem(422, "traits-not-normalised",
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


def malformed_ins(identity: dict[str, Any], fault_name: str) -> dict[str, str]:
    """The INS or OID a malformed answer carries instead: the NIR without its key, or a non-INS OID."""
    if fault_name == "short_ins":
        return {"ins": identity["ins"][:13]}
    return {"oid": "1.2.250.1.71.4.2.1"}  # an assigning authority that is not an INS one (RPPS-like)
