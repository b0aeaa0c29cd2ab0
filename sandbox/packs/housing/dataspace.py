"""The housing data space: a home's documents (DPE, quotes, works, consumption), gated by the household's consent.

Session role (``/s/{sid}/dataspace``, an access token of the session: a logged-in professional). The sandbox
plays the household, who grants what is asked (fault ``deny_transfer``: never the transfer of consumption
data) and may revoke at any time (fault ``revoke_after = n``: the household revokes a consent after n reads).

* ``POST /consents`` — ``{"household": fiscal number, "scope": ["dpe", "quote", "works", "consumption"],
  "transfer_consumption": bool, "purpose": text, "expires": date}`` → 201 the consent (``consent_id``,
  ``status`` granted, ``grantee`` the token's subject).
* ``GET /consents/{id}``, ``DELETE /consents/{id}`` (revocation on the household's behalf).
* Every home access carries the consent it relies on in the ``Consent-Id`` header, for that very home, by
  its grantee, unrevoked, unexpired, covering the kind (else 403 ``consent-missing``, ``consent-unknown``,
  ``consent-other-home``, ``consent-revoked``, ``consent-scope``):
  ``GET /homes/{fiscal}/documents?kind=K`` (nothing is readable after revocation),
  ``POST /homes/{fiscal}/quotes`` (a harmonised quote, kind ``quote``; 422 ``quote-invalid``),
  ``POST /homes/{fiscal}/works`` (a works record for the carnet, kind ``works``; 422 ``works-invalid``),
  ``POST /homes/{fiscal}/transfers`` (consumption data sent to a third party: 403 ``transfer-not-consented``
  unless the consent allows it).

Production role (``/prod/dataspace``, installation token): ``POST /homes/{fiscal}/quotes`` and ``/works`` with
a ``Consent-Id``; each accepted one emits a data-received event (kind ``quote`` or ``works``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from conformity.errors import SignatureError
from conformity.http_problems import require_json_media
from conformity.packs.housing.rules import is_fiscal_number
from conformity.signing import canonical_json, require_canonicalisable
from sandbox.deps import (
    Caller,
    fault,
    raise_if_unavailable,
    read_json,
    require_access_token,
    require_installation,
    store_of,
    take_fault,
)
from sandbox.events import data_received
from sandbox.parsed import parse_json
from sandbox.problems import HTTPProblem, set_outcome
from sandbox.sessions import new_id

SERVICE = "dataspace"
#: the requests network faults hit
NETWORK_METHODS = ("GET", "POST", "DELETE")
CONSENTS, DEPOSITS = "housing-consents", "housing-deposits"
KINDS = ("dpe", "quote", "works", "consumption")
SCHEMAS = Path(__file__).resolve().parents[3] / "conformity" / "packs" / "housing" / "schemas"
MAX_JSON = 256 * 1024
router = APIRouter(tags=["dataspace"])
prod_router = APIRouter(tags=["dataspace (production)"])


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    household: str = Field(..., pattern=r"^[0-9][0-9AB][0-9]{10}$", description="The home's fiscal housing number.")
    scope: list[str] = Field(..., min_length=1, max_length=4)
    transfer_consumption: bool = False
    purpose: str = Field(..., min_length=3, max_length=300)
    expires: dt.date


def _schema_file(name: str) -> dict[str, Any]:
    """A harmonised format's JSON Schema for the OpenAPI description (its ``$schema``/``$id`` left out)."""
    doc: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return {k: v for k, v in doc.items() if not k.startswith("$")}


def _json_body(schema: dict[str, Any], *, consent: bool = True) -> dict[str, Any]:
    """``openapi_extra`` of an operation that reads its JSON body itself: the body's schema, and the ``Consent-Id``
    header every home access carries."""
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
    if consent:
        extra["parameters"] = [CONSENT_ID]
    return extra


CONSENT_ID = {
    "name": "Consent-Id", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 100},
    "description": "The consent this access relies on (POST /s/{session_id}/dataspace/consents): for this home, "
                   "granted to the caller, unrevoked, unexpired, covering the kind (else 403).",
}


def _home(session: dict[str, Any], fiscal: str) -> dict[str, Any]:
    if not is_fiscal_number(fiscal):
        raise HTTPProblem(422, "fiscal-number-invalid", f"{fiscal!r} is not a fiscal housing number (12 characters)")
    home: dict[str, Any] | None = next(
        (h for h in session["fixtures"].get("homes", ()) if h["fiscal_number"] == fiscal), None
    )
    if home is None:
        raise HTTPProblem(404, "home-unknown", f"no home {fiscal} in the data space")
    return home


@router.post("/consents", status_code=201, summary="Ask the household for consent (the sandbox plays the household)",
             openapi_extra=_json_body(ConsentRequest.model_json_schema(), consent=False))
async def post_consent(
    request: Request, session_id: str, caller: Caller = Depends(require_access_token)
) -> JSONResponse:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    body = await read_json(request, ConsentRequest)
    unknown = sorted(set(body.scope) - set(KINDS))
    if unknown:
        raise HTTPProblem(422, "scope-unknown", f"unknown kind(s) {', '.join(unknown)} (kinds: {', '.join(KINDS)})")
    _home(caller.session, body.household)
    transfer = body.transfer_consumption and not fault(caller.session, SERVICE).get("deny_transfer")
    consent = {
        "consent_id": new_id("cst"),
        "household": body.household,
        "grantee": str(caller.token.get("sub", "")),
        "scope": sorted(set(body.scope)),
        "transfer_consumption": transfer,
        "purpose": body.purpose,
        "expires": body.expires.isoformat(),
        "status": "granted",
        "reads": 0,
    }
    store_of(request).put_record(CONSENTS, session_id, str(consent["consent_id"]), consent)
    set_outcome(
        request,
        "consent-granted",
        consent_id=consent["consent_id"],
        scope=consent["scope"],
        transfer_consumption=transfer,
    )
    return JSONResponse(_public(consent), status_code=201)


def _public(consent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in consent.items() if k != "reads"}


def _consent(request: Request, caller: Caller, consent_id: str) -> dict[str, Any]:
    consent: dict[str, Any] | None = store_of(request).get_record(CONSENTS, caller.session["id"], consent_id)
    if consent is None:
        raise HTTPProblem(403, "consent-unknown", f"no consent {consent_id!r} was granted in this data space")
    return consent


@router.get("/consents/{consent_id}", summary="A consent and its status")
def get_consent(
    request: Request, session_id: str, consent_id: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    consent = _consent(request, caller, consent_id)
    set_outcome(request, f"consent-{consent['status']}")
    return _public(consent)


@router.delete("/consents/{consent_id}", summary="Revoke a consent (on the household's behalf)")
def delete_consent(
    request: Request, session_id: str, consent_id: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    consent = _consent(request, caller, consent_id) | {"status": "revoked"}
    store_of(request).put_record(CONSENTS, session_id, consent_id, consent)
    set_outcome(request, "consent-revoked-by-request", consent_id=consent_id)
    return _public(consent)


def require_consent(request: Request, caller: Caller, fiscal: str, kind: str) -> dict[str, Any]:
    """The consent named by ``Consent-Id``, valid for this home, caller and kind; else a 403 problem."""
    consent_id = request.headers.get("consent-id", "").strip()
    if not consent_id:
        raise HTTPProblem(403, "consent-missing", "every access to a home carries the consent it relies on (Consent-Id)")
    consent = _consent(request, caller, consent_id)
    if consent["household"] != fiscal:
        raise HTTPProblem(403, "consent-other-home", f"consent {consent_id} was granted for another home")
    if consent["grantee"] != str(caller.token.get("sub", "")):
        raise HTTPProblem(403, "consent-other-grantee", f"consent {consent_id} was granted to another professional")
    if consent["status"] != "granted":
        raise HTTPProblem(403, "consent-revoked", f"the household revoked consent {consent_id}: nothing is readable")
    if consent["expires"] < dt.date.today().isoformat():
        raise HTTPProblem(403, "consent-expired", f"consent {consent_id} expired on {consent['expires']}")
    if kind not in consent["scope"]:
        raise HTTPProblem(
            403,
            "consent-scope",
            f"consent {consent_id} does not cover {kind} (it covers {', '.join(consent['scope'])})",
            kind=kind,
        )
    return consent


def _documents(request: Request, session_id: str, home: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "dpe":
        visit = home["visit"]
        return [
            {
                "kind": "dpe",
                "energy_class": visit["energy_class"],
                "ep_conso": visit["ep_conso"],
                "emissions": visit["emissions"],
                "surface": visit["surface"],
            }
        ]
    if kind == "consumption":
        base = home["visit"]["ep_conso"] * home["visit"]["surface"] / 12 / 2.3
        return [
            {"kind": "consumption", "month": f"2026-{m:02d}", "kwh": round(base * (1.6 if m in (1, 2, 12) else 0.8))}
            for m in range(1, 13)
        ]
    return [
        d["document"]
        for d in store_of(request).list_records(DEPOSITS, session_id)
        if d["home"] == home["fiscal_number"] and d["kind"] == kind
    ]


@router.get("/homes/{fiscal}/documents", summary="A home's documents of one kind (Consent-Id)",
            openapi_extra={"parameters": [CONSENT_ID]})
def get_documents(
    request: Request, session_id: str, fiscal: str, kind: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    home = _home(caller.session, fiscal)
    if kind not in KINDS:
        raise HTTPProblem(422, "kind-unknown", f"kind is one of {', '.join(KINDS)}")
    consent = require_consent(request, caller, fiscal, kind)
    limit = fault(caller.session, SERVICE).get("revoke_after")
    if limit and consent["reads"] >= limit:  # the household revokes now: this read already finds nothing
        take_fault(store_of(request), caller.session, SERVICE, "revoke_after")
        store_of(request).put_record(CONSENTS, session_id, consent["consent_id"], consent | {"status": "revoked"})
        raise HTTPProblem(
            403, "consent-revoked", f"the household revoked consent {consent['consent_id']}: nothing is readable"
        )
    store_of(request).put_record(CONSENTS, session_id, consent["consent_id"], consent | {"reads": consent["reads"] + 1})
    found = _documents(request, session_id, home, kind)
    set_outcome(request, "documents-read", kind=kind, consent_id=consent["consent_id"], count=len(found))
    return {"home": fiscal, "kind": kind, "consent_id": consent["consent_id"], "documents": found}


async def _deposit_body(request: Request, schema: str) -> dict[str, Any]:
    require_json_media(request)
    raw = await request.body()
    if len(raw) > MAX_JSON:
        raise HTTPProblem(413, "body-too-large", f"a {schema} is at most {MAX_JSON} bytes")
    try:
        doc: dict[str, Any] = parse_json(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HTTPProblem(400, "json-malformed", "the body is not JSON") from None
    errors = sorted(({"where": "/".join(map(str, e.absolute_path)) or "(root)", "message": e.message}
                     for e in validator(schema).iter_errors(doc)), key=lambda x: (x["where"], x["message"]))
    if not errors:
        try:  # its identity is the SHA-256 of its canonical JSON: a value that has none (NaN, 2**53) is refused
            require_canonicalisable(doc)
        except SignatureError as exc:
            errors = [{"where": "(root)", "message": str(exc)}]
    if errors:
        raise HTTPProblem(
            422, f"{schema}-invalid", f"the {schema} does not follow the harmonised format", errors=errors[:20]
        )
    return doc


def _deposit(request: Request, scope: str, fiscal: str, kind: str, doc: dict[str, Any], key: str) -> dict[str, Any]:
    store = store_of(request)
    existing = store.get_record(DEPOSITS, scope, f"{kind}:{doc[key]}")
    digest = hashlib.sha256(canonical_json(doc)).hexdigest()
    if existing is not None:
        if existing["sha256"] != digest:
            raise HTTPProblem(409, f"{kind}-id-conflict", f"{key} {doc[key]} was deposited with another content")
        return existing | {"duplicate": True}
    record = {
        "kind": kind,
        "home": fiscal,
        "id": doc[key],
        "sha256": digest,
        "document": doc,
        "bytes": len(canonical_json(doc)),
    }
    store.put_record(DEPOSITS, scope, f"{kind}:{doc[key]}", record)
    return record


async def _session_deposit(request: Request, caller: Caller, fiscal: str, kind: str, key: str) -> JSONResponse:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    _home(caller.session, fiscal)
    require_consent(request, caller, fiscal, kind)
    doc = await _deposit_body(request, kind)
    record = _deposit(request, caller.session["id"], fiscal, kind, doc, key)
    set_outcome(request, f"{kind}-{'duplicate' if record.get('duplicate') else 'deposited'}", id=record["id"])
    return JSONResponse(
        {"id": record["id"], "sha256": record["sha256"], "duplicate": bool(record.get("duplicate"))},
        status_code=200 if record.get("duplicate") else 201,
    )


@router.post("/homes/{fiscal}/quotes", status_code=201, summary="Deposit a harmonised quote (Consent-Id)",
             openapi_extra=_json_body(_schema_file("quote")))
async def post_quote(
    request: Request, session_id: str, fiscal: str, caller: Caller = Depends(require_access_token)
) -> JSONResponse:
    return await _session_deposit(request, caller, fiscal, "quote", "quote_id")


@router.post("/homes/{fiscal}/works", status_code=201, summary="Record works for the carnet (Consent-Id)",
             openapi_extra=_json_body(_schema_file("works")))
async def post_works(
    request: Request, session_id: str, fiscal: str, caller: Caller = Depends(require_access_token)
) -> JSONResponse:
    return await _session_deposit(request, caller, fiscal, "works", "works_id")


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipient: str = Field(..., min_length=3, max_length=200)
    period: str = Field(..., pattern=r"^[0-9]{4}(-[0-9]{2})?$")


@router.post("/homes/{fiscal}/transfers", status_code=201, summary="Transfer consumption data (Consent-Id)",
             openapi_extra=_json_body(TransferRequest.model_json_schema()))
async def post_transfer(
    request: Request, session_id: str, fiscal: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    _home(caller.session, fiscal)
    consent = require_consent(request, caller, fiscal, "consumption")
    body = await read_json(request, TransferRequest)
    if not consent["transfer_consumption"]:
        raise HTTPProblem(
            403, "transfer-not-consented", "the household did not allow its consumption data to be transferred"
        )
    set_outcome(request, "transfer-accepted", recipient=body.recipient)
    return {"transfer_id": new_id("trf"), "recipient": body.recipient, "period": body.period}


async def _prod_deposit(
    request: Request, installation: dict[str, Any], fiscal: str, kind: str, key: str
) -> JSONResponse:
    if not is_fiscal_number(fiscal):
        raise HTTPProblem(422, "fiscal-number-invalid", f"{fiscal!r} is not a fiscal housing number")
    if not request.headers.get("consent-id", "").strip():
        raise HTTPProblem(403, "consent-missing", "every access to a home carries the consent it relies on (Consent-Id)")
    doc = await _deposit_body(request, kind)
    record = _deposit(request, "prod", fiscal, kind, doc, key)
    if not record.get("duplicate"):
        source = f"{request.app.state.config.installation_event_source}:{SERVICE}"
        request.app.state.event_log.append(
            data_received(
                installation,
                source=source,
                kind=kind,
                document_type=None,
                size=record["bytes"],
                sha256=record["sha256"],
                reference=f"{kind}:{record['id']}",
            )
        )
    set_outcome(request, f"{kind}-{'duplicate' if record.get('duplicate') else 'deposited'}", id=record["id"])
    return JSONResponse(
        {"id": record["id"], "sha256": record["sha256"], "duplicate": bool(record.get("duplicate"))},
        status_code=200 if record.get("duplicate") else 201,
    )


@prod_router.post("/homes/{fiscal}/quotes", status_code=201, summary="Deposit a quote from an installed software",
                  openapi_extra=_json_body(_schema_file("quote")))
async def prod_post_quote(
    request: Request, fiscal: str, installation: dict[str, Any] = Depends(require_installation)
) -> JSONResponse:
    return await _prod_deposit(request, installation, fiscal, "quote", "quote_id")


@prod_router.post("/homes/{fiscal}/works", status_code=201, summary="Record works from an installed software",
                  openapi_extra=_json_body(_schema_file("works")))
async def prod_post_works(
    request: Request, fiscal: str, installation: dict[str, Any] = Depends(require_installation)
) -> JSONResponse:
    return await _prod_deposit(request, installation, fiscal, "works", "works_id")
