"""The housing data space: a home's documents (DPE, quotes, works, consumption), gated by the household's consent.

Session role (``/s/{sid}/dataspace``, an access token of the session: a logged-in professional). The sandbox
plays the household, who grants what is asked (fault ``deny_transfer``: never the transfer of consumption
data) and may revoke at any time (fault ``revoke_after = n``: the household revokes a consent after n reads).

* ``POST /consents`` — ``{"household": fiscal number, "scope": ["dpe", "quote", "works", "consumption"],
  "transfer_consumption": bool, "purpose": text, "expires": date}`` → 201 the consent (``consent_id``,
  ``status`` granted, ``grantee`` the token's subject); 422 ``purpose-invalid`` for a purpose holding characters
  that do not read as written (control, format, line separators, private-use: :func:`hidden_characters`), 422
  ``invalid-request`` for a ``transfer_consumption`` that is no JSON boolean (``"true"``, 1).
* ``GET /consents/{id}``, ``DELETE /consents/{id}`` (revocation on the household's behalf), the caller's own
  consents only (403 ``consent-other-grantee``); a revoked consent revoked again is a 409
  ``consent-already-revoked``.
* Every home access carries the consent it relies on in the ``Consent-Id`` header, for that very home, by
  its grantee, unrevoked, unexpired, covering the kind (else 403 ``consent-missing``, ``consent-unknown``,
  ``consent-other-home``, ``consent-other-grantee``, ``consent-revoked``, ``consent-expired``, ``consent-scope``):
  ``GET /homes/{fiscal}/documents?kind=K`` (nothing is readable after revocation),
  ``POST /homes/{fiscal}/quotes`` (a harmonised quote, kind ``quote``; 422 ``quote-invalid``; 422 ``home-mismatch``
  when its ``home.fiscal_number`` is another home than the path's, in both roles, or, in a test session, its
  ``home.rnb_id`` another building than the home's),
  ``POST /homes/{fiscal}/works`` (a works record for the carnet, kind ``works``; 422 ``works-invalid``),
  ``POST /homes/{fiscal}/transfers`` (consumption data sent to a third party: 403 ``transfer-not-consented``
  unless the consent allows it).

Production role (``/prod/dataspace``, installation token): the same rules, by the same code, with the installation
as the grantee (the sandbox plays every household, who grants what is asked):

* ``POST /consents``, ``GET /consents/{id}``, ``DELETE /consents/{id}`` — as above; ``grantee`` is the
  installation's id, and an installation reads or revokes only its own consents (403 ``consent-other-grantee``).
* ``POST /homes/{fiscal}/quotes`` and ``/works`` with the ``Consent-Id`` of a consent the household granted to
  this installation, for that home, unrevoked, unexpired, covering the kind (the 403 codes above; a consent of a
  test session or of another installation is not one); each accepted one emits a data-received event (kind
  ``quote`` or ``works``), a duplicate (same id, same content: 200 ``duplicate`` true) none.
* ``POST /homes/{fiscal}/transfers`` — ``{"recipient", "period"}`` with the ``Consent-Id`` of such a consent
  covering ``consumption`` and allowing the transfer: the home's consumption data for that period goes to the
  recipient (to measure a renovation's effect); each new transfer emits a data-received event (kind
  ``consumption_transfer``); the same installation's transfer of months of that home it already transferred to
  that recipient is the same transfer (200 ``duplicate``: a year covers its 12 months, ``2026-01`` after ``2026`` is
  one; recipients compare by :func:`recipient_key`). In both roles, the period is a real month or year, from 1990, not
  to come (422 ``period-invalid``), the recipient a name without characters that do not read as written
  (:func:`hidden_characters`; 422 ``recipient-invalid``).

An installation sends only the kinds its label covers (:func:`sandbox.deps.require_covered`: its wave pins, for its
category, a referential covering the kind in pack.toml; else 403 ``kind-not-covered``): quotes and works are a
contractor's (WORKS), transfers an adviser's or a contractor's (CONSENT).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import unicodedata
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from conformity.errors import SignatureError
from conformity.http_problems import require_json_media
from conformity.packs.housing.rules import is_fiscal_number, normalise_rnb
from conformity.signing import canonical_json, require_canonicalisable
from conformity.text import as_read, hidden_characters
from sandbox.deps import (
    Caller,
    duplicate_member,
    fault,
    raise_if_unavailable,
    read_json,
    require_access_token,
    require_covered,
    require_installation,
    store_of,
    take_fault,
)
from sandbox.events import data_received
from sandbox.parsed import DuplicateMember, parse_body
from sandbox.problems import HTTPProblem, set_outcome
from sandbox.sessions import new_id
from sandbox.store import Store

SERVICE = "dataspace"
#: the requests network faults hit
NETWORK_METHODS = ("GET", "POST", "DELETE")
CONSENTS, DEPOSITS = "housing-consents", "housing-deposits"
#: the production role's transfers, one record per period and per month transferred (the transfer that covered it)
TRANSFERS = "housing-transfers"
#: a deposit's meaning (its home, its document but its id) → the id it was first filed under (:func:`_deposit`)
MEANINGS = "housing-deposit-meanings"
KINDS = ("dpe", "quote", "works", "consumption")
#: where the production role keeps its consents and deposits
PROD = "prod"
#: the data kind of a transfer of consumption data (pack.toml ``data_kinds``)
TRANSFER = "consumption_transfer"
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
    #: strict: the household allows the transfer of its consumption data with a JSON ``true``, never ``"true"`` or 1
    transfer_consumption: bool = Field(False, strict=True)
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


@dataclass(frozen=True, slots=True)
class Party:
    """Who asks the household for consent and relies on it: a professional logged in to a test session, or an
    installation in production. One code for both roles; only where things are kept and who the grantee is differ."""

    #: where its consents and deposits are kept: the test session's id, or :data:`PROD`
    scope: str
    #: to whom the household grants: the access token's subject, or the installation's id
    grantee: str
    #: the test session (its homes, its faults); None in production (every well-formed home, no faults)
    session: dict[str, Any] | None = None

    @classmethod
    def professional(cls, caller: Caller) -> Party:
        return cls(caller.session["id"], str(caller.token.get("sub", "")), caller.session)

    @classmethod
    def installation(cls, installation: dict[str, Any]) -> Party:
        return cls(PROD, str(installation["id"]))

    def faults(self) -> dict[str, Any]:
        return fault(self.session, SERVICE) if self.session is not None else {}

    def home(self, fiscal: str) -> None:
        """422 unless ``fiscal`` is a fiscal housing number; in a test session, 404 unless it is one of its homes."""
        if self.session is not None:
            _home(self.session, fiscal)
        elif not is_fiscal_number(fiscal):
            raise HTTPProblem(422, "fiscal-number-invalid", f"{fiscal!r} is not a fiscal housing number (12 characters)")


def _home(session: dict[str, Any], fiscal: str) -> dict[str, Any]:
    if not is_fiscal_number(fiscal):
        raise HTTPProblem(422, "fiscal-number-invalid", f"{fiscal!r} is not a fiscal housing number (12 characters)")
    home: dict[str, Any] | None = next(
        (h for h in session["fixtures"].get("homes", ()) if h["fiscal_number"] == fiscal), None
    )
    if home is None:
        raise HTTPProblem(404, "home-unknown", f"no home {fiscal} in the data space")
    return home


async def _grant(request: Request, party: Party) -> JSONResponse:
    """The household (played by the sandbox) grants what is asked, to ``party``."""
    body = await read_json(request, ConsentRequest)
    unknown = sorted(set(body.scope) - set(KINDS))
    if unknown:
        raise HTTPProblem(422, "scope-unknown", f"unknown kind(s) {', '.join(unknown)} (kinds: {', '.join(KINDS)})")
    hidden = hidden_characters(body.purpose)
    if hidden:
        raise HTTPProblem(422, "purpose-invalid", f"the purpose holds characters that do not read as written "
                                                  f"({', '.join(hidden)}): the household reads it as it is written",
                          characters=hidden)
    party.home(body.household)
    transfer = body.transfer_consumption and not party.faults().get("deny_transfer")
    consent = {
        "consent_id": new_id("cst"),
        "household": body.household,
        "grantee": party.grantee,
        "scope": sorted(set(body.scope)),
        "transfer_consumption": transfer,
        "purpose": body.purpose,
        "expires": body.expires.isoformat(),
        "status": "granted",
        "reads": 0,
    }
    store_of(request).put_record(CONSENTS, party.scope, str(consent["consent_id"]), consent)
    set_outcome(
        request,
        "consent-granted",
        consent_id=consent["consent_id"],
        scope=consent["scope"],
        transfer_consumption=transfer,
    )
    return JSONResponse(_public(consent), status_code=201)


@router.post("/consents", status_code=201, summary="Ask the household for consent (the sandbox plays the household)",
             openapi_extra=_json_body(ConsentRequest.model_json_schema(), consent=False))
async def post_consent(
    request: Request, session_id: str, caller: Caller = Depends(require_access_token)
) -> JSONResponse:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    return await _grant(request, Party.professional(caller))


def _public(consent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in consent.items() if k != "reads"}


def _consent(request: Request, party: Party, consent_id: str, *, own: bool = False) -> dict[str, Any]:
    """The consent ``consent_id`` kept where ``party``'s are (403 ``consent-unknown``); ``own``: granted to
    ``party`` (403 ``consent-other-grantee``)."""
    consent: dict[str, Any] | None = store_of(request).get_record(CONSENTS, party.scope, consent_id)
    if consent is None:
        raise HTTPProblem(403, "consent-unknown", f"no consent {consent_id!r} was granted in this data space")
    if own and consent["grantee"] != party.grantee:
        raise HTTPProblem(403, "consent-other-grantee", f"consent {consent_id} was granted to another professional")
    return consent


def _read_consent(request: Request, party: Party, consent_id: str, *, own: bool = False) -> dict[str, Any]:
    consent = _consent(request, party, consent_id, own=own)
    set_outcome(request, f"consent-{consent['status']}")
    return _public(consent)


def _consents_locked(request: Request, scope: str) -> AbstractContextManager[Any]:
    """The store's lock on one scope's consents, for a read-modify-write of one (a read counted, a revocation): a
    revocation is never overwritten by a read counted from the consent as it was before."""
    return store_of(request).lock(f"{CONSENTS}\n{scope}")


def _revoke(request: Request, party: Party, consent_id: str, *, own: bool = False) -> dict[str, Any]:
    with _consents_locked(request, party.scope):
        consent = _consent(request, party, consent_id, own=own)
        if consent["status"] == "revoked":
            raise HTTPProblem(409, "consent-already-revoked", f"consent {consent_id} is already revoked",
                              consent_id=consent_id)
        consent = consent | {"status": "revoked"}
        store_of(request).put_record(CONSENTS, party.scope, consent_id, consent)
    set_outcome(request, "consent-revoked-by-request", consent_id=consent_id)
    return _public(consent)


@router.get("/consents/{consent_id}", summary="A consent and its status")
def get_consent(
    request: Request, session_id: str, consent_id: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    return _read_consent(request, Party.professional(caller), consent_id, own=True)


@router.delete("/consents/{consent_id}", summary="Revoke a consent (on the household's behalf)")
def delete_consent(
    request: Request, session_id: str, consent_id: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    return _revoke(request, Party.professional(caller), consent_id, own=True)


def require_consent(request: Request, party: Party, fiscal: str, kind: str) -> dict[str, Any]:
    """The consent named by ``Consent-Id``, valid for this home, party and kind; else a 403 problem."""
    consent_id = request.headers.get("consent-id", "").strip()
    if not consent_id:
        raise HTTPProblem(403, "consent-missing", "every access to a home carries the consent it relies on (Consent-Id)")
    consent = _consent(request, party, consent_id)
    if consent["household"] != fiscal:
        raise HTTPProblem(403, "consent-other-home", f"consent {consent_id} was granted for another home")
    if consent["grantee"] != party.grantee:
        raise HTTPProblem(403, "consent-other-grantee", f"consent {consent_id} was granted to another professional")
    if consent["status"] != "granted":
        raise HTTPProblem(403, "consent-revoked", f"the household revoked consent {consent_id}: nothing is readable")
    if consent["expires"] < dt.datetime.now(dt.UTC).date().isoformat():  # the UTC day, whatever the host's zone
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
    party = Party.professional(caller)
    with _consents_locked(request, party.scope):  # the consent read, checked and counted at once
        consent = require_consent(request, party, fiscal, kind)
        limit = fault(caller.session, SERVICE).get("revoke_after")
        if limit and consent["reads"] >= limit:  # the household revokes now: this read already finds nothing
            take_fault(store_of(request), caller.session, SERVICE, "revoke_after")
            store_of(request).put_record(CONSENTS, session_id, consent["consent_id"], consent | {"status": "revoked"})
            raise HTTPProblem(
                403, "consent-revoked", f"the household revoked consent {consent['consent_id']}: nothing is readable"
            )
        store_of(request).put_record(CONSENTS, session_id, consent["consent_id"],
                                     consent | {"reads": consent["reads"] + 1})
    found = _documents(request, session_id, home, kind)
    set_outcome(request, "documents-read", kind=kind, consent_id=consent["consent_id"], count=len(found))
    return {"home": fiscal, "kind": kind, "consent_id": consent["consent_id"], "documents": found}


async def _deposit_body(request: Request, schema: str) -> dict[str, Any]:
    require_json_media(request)
    raw = await request.body()
    if len(raw) > MAX_JSON:
        raise HTTPProblem(413, "body-too-large", f"a {schema} is at most {MAX_JSON} bytes")
    try:
        doc: dict[str, Any] = parse_body(raw)
    except DuplicateMember as exc:
        raise duplicate_member(exc) from None
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


def _deposit(request: Request, scope: str, fiscal: str, kind: str, doc: dict[str, Any], key: str,
             installation: dict[str, Any] | None = None) -> dict[str, Any]:
    """File a quote or works record (``key``: its id member) under ``scope``, once: the same id again is the record
    filed (a duplicate), or 409 with another content; the same content under another id is a duplicate of the first
    (its meaning is the document but its id, its texts as they read: re-filed under fresh ids, or re-spelled, one
    quote would be many). ``installation`` (the production role): whose ids and contents these are (another
    contractor's quote ``Q-1`` is its own; a test session's are the session's), and who is paid: its data-received
    event is appended under the lock, the record marked with its ``event_id`` after — a record whose event was never
    written (the append failed: a full disk) has it written when the same document is deposited again. Checked and
    written under one lock: two deposits at once are one record, one event."""
    named = doc.get("home", {}).get("fiscal_number") if isinstance(doc.get("home"), dict) else None
    if named is not None and named != fiscal:  # a document for home X is X's, not the home whose consent it uses
        raise HTTPProblem(
            422, "home-mismatch", f"the {kind} is for home {named}, not for home {fiscal} it is deposited to",
            path_home=fiscal, body_home=named,
        )
    store = store_of(request)
    prefix = f"{kind}:{installation['id']}:" if installation is not None else f"{kind}:"
    canonical = canonical_json(doc)
    digest = hashlib.sha256(canonical).hexdigest()
    # its home's: a works record names none (its home is the path's), and the same works in two homes are two
    meaning = f"{prefix}{fiscal}:" + hashlib.sha256(
        canonical_json(_read({k: v for k, v in doc.items() if k != key}))).hexdigest()
    name = f"{DEPOSITS}\n{scope}"
    # a test session's deposit: one commit before the lock is let go; an installation's event is appended between
    with store.locked_batch(name) if installation is None else store.lock(name):
        record = _deposit_locked(store, scope, fiscal, kind, doc, key, prefix, meaning, digest, len(canonical),
                                 pending=installation is not None)
        if installation is not None and record.get("event_id", "") is None:
            filed = {k: v for k, v in record.items() if k != "duplicate"}
            filed["event_id"] = _emit(request, installation, kind, record, f"{kind}:{record['id']}")
            store.put_record(DEPOSITS, scope, prefix + str(record["id"]), filed)
            record = filed | ({"duplicate": True} if record.get("duplicate") else {})
    return record


def _deposit_locked(store: Store, scope: str, fiscal: str, kind: str, doc: dict[str, Any], key: str, prefix: str,
                    meaning: str, digest: str, size: int, *, pending: bool) -> dict[str, Any]:
    """:func:`_deposit`'s check and writes, its lock held; ``pending``: a new record awaits its event (``event_id``
    None)."""
    existing = store.get_record(DEPOSITS, scope, prefix + str(doc[key]))
    if existing is not None:
        if existing["sha256"] != digest:
            raise HTTPProblem(409, f"{kind}-id-conflict", f"{key} {doc[key]} was deposited with another content")
        return existing | {"duplicate": True}
    first = store.get_record(MEANINGS, scope, meaning)
    if first is not None:
        same = store.get_record(DEPOSITS, scope, prefix + str(first["id"]))
        if same is not None:
            return same | {"duplicate": True}
    record = {
        "kind": kind,
        "home": fiscal,
        "id": doc[key],
        "sha256": digest,
        "document": doc,
        "bytes": size,
    } | ({"event_id": None} if pending else {})
    store.put_record(DEPOSITS, scope, prefix + str(doc[key]), record)
    store.put_record(MEANINGS, scope, meaning, {"id": doc[key]})
    return record


def _read(value: Any) -> Any:
    """A deposit's values as they read (:func:`conformity.text.as_read`, as a DPE's texts are compared); numbers are
    already one spelling in canonical JSON (100, 100.0 and 1E2 alike)."""
    if isinstance(value, str):
        return as_read(value)
    if isinstance(value, dict):
        return {as_read(k): _read(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_read(v) for v in value]
    return value


def _deposited(request: Request, kind: str, record: dict[str, Any]) -> JSONResponse:
    """The answer to a deposit, in either role: 201, or 200 for the same document again (``duplicate``)."""
    set_outcome(request, f"{kind}-{'duplicate' if record.get('duplicate') else 'deposited'}", id=record["id"])
    return JSONResponse(
        {"id": record["id"], "sha256": record["sha256"], "duplicate": bool(record.get("duplicate"))},
        status_code=200 if record.get("duplicate") else 201,
    )


def _require_home_building(home: dict[str, Any], doc: dict[str, Any]) -> None:
    """422 ``home-mismatch`` when a quote's ``home.rnb_id`` is not the building of the home it is deposited to (a test
    session's data space knows each home's building): another home's (a look-up kept from another home), or an id
    the registry does not hold. Written with dashes or in lower case it is the same building (HOUSINGID-001 judges
    the form); none named is no claim."""
    named = doc["home"].get("rnb_id")
    if named is not None and normalise_rnb(str(named)) != home["rnb_id"]:
        raise HTTPProblem(
            422, "home-mismatch", f"the quote names building {named!r}, not the building of home "
                                  f"{home['fiscal_number']} it is deposited to",
            body_building=named, home_building=home["rnb_id"],
        )


async def _session_deposit(request: Request, caller: Caller, fiscal: str, kind: str, key: str) -> JSONResponse:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    home = _home(caller.session, fiscal)
    require_consent(request, Party.professional(caller), fiscal, kind)
    doc = await _deposit_body(request, kind)
    if kind == "quote":
        _require_home_building(home, doc)
    record = _deposit(request, caller.session["id"], fiscal, kind, doc, key)
    return _deposited(request, kind, record)


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


#: the first year of consumption data a transfer may ask for
FIRST_YEAR = 1990


def period_months(period: str, today: dt.date | None = None) -> list[str]:
    """The months (``YYYY-MM``) of a transfer's period, ``YYYY`` (its 12 months) or ``YYYY-MM``; 422
    ``period-invalid`` unless it is a real month (01-12) of a year from :data:`FIRST_YEAR` on, neither in the future
    (a month not after the current one, a year not after the current one)."""
    today = today or dt.datetime.now(dt.UTC).date()
    if not re.fullmatch(r"[0-9]{4}(-[0-9]{2})?", period):
        raise HTTPProblem(422, "period-invalid", f"period {period!r} is a year (YYYY) or a month (YYYY-MM)")
    year, _, month = period.partition("-")
    if not FIRST_YEAR <= int(year) <= today.year:
        raise HTTPProblem(422, "period-invalid", f"period {period!r}: the year is from {FIRST_YEAR} to {today.year}, "
                                                 "no consumption data exists for it")
    if not month:
        return [f"{year}-{m:02d}" for m in range(1, 13)]
    if not 1 <= int(month) <= 12:
        raise HTTPProblem(422, "period-invalid", f"period {period!r}: the month is 01 to 12")
    if (int(year), int(month)) > (today.year, today.month):
        raise HTTPProblem(422, "period-invalid", f"period {period!r} is a month to come: no consumption data exists "
                                                 "for it yet")
    return [period]


def recipient_key(recipient: str) -> str:
    """Whom a transfer goes to, compared by a normal form (NFKC, case folded, letters and digits only): ``ADEME``,
    ``ademe.``, ``ＡＤＥＭＥ`` and ``"Ademe"`` are one recipient. 422 ``recipient-invalid`` for a name holding a character
    that does not read as written (:func:`hidden_characters`: NUL, a zero-width space, a bidirectional override, a
    line separator…), or with no letter or digit."""
    hidden = hidden_characters(recipient)
    if hidden:
        raise HTTPProblem(422, "recipient-invalid", f"the recipient holds characters that do not read as written "
                                                    f"({', '.join(hidden)}): a recipient is a name as it is read",
                          characters=hidden)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", recipient).casefold())
    key = "".join(c for c in folded if c.isalnum())
    if not key:
        raise HTTPProblem(422, "recipient-invalid", "the recipient names no one (no letter or digit)")
    return key


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer asked: what the request says, whom it goes to (:func:`recipient_key`) and the months it covers."""

    body: TransferRequest
    recipient: str
    months: list[str]


async def _transfer_asked(request: Request, party: Party, fiscal: str) -> Transfer:
    """A transfer of the home's consumption data under the consent it names, which must allow it (else 403), of a
    period that exists (:func:`period_months`) to a recipient read as it is written (:func:`recipient_key`)."""
    party.home(fiscal)
    consent = require_consent(request, party, fiscal, "consumption")
    body = await read_json(request, TransferRequest)
    if not consent["transfer_consumption"]:
        raise HTTPProblem(
            403, "transfer-not-consented", "the household did not allow its consumption data to be transferred"
        )
    return Transfer(body, recipient_key(body.recipient), period_months(body.period))


@router.post("/homes/{fiscal}/transfers", status_code=201, summary="Transfer consumption data (Consent-Id)",
             openapi_extra=_json_body(TransferRequest.model_json_schema()))
async def post_transfer(
    request: Request, session_id: str, fiscal: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    raise_if_unavailable(request, caller.session, SERVICE, "the housing data space")
    body = (await _transfer_asked(request, Party.professional(caller), fiscal)).body
    set_outcome(request, "transfer-accepted", recipient=body.recipient)
    return {"transfer_id": new_id("trf"), "recipient": body.recipient, "period": body.period}


def _emit(request: Request, installation: dict[str, Any], kind: str, record: dict[str, Any], reference: str) -> str:
    """One data-received event: the infrastructure accepted ``record`` (its bytes and digest) from the installation;
    its id."""
    event = data_received(
        installation,
        source=f"{request.app.state.config.installation_event_source}:{SERVICE}",
        kind=kind,
        document_type=None,
        size=record["bytes"],
        sha256=record["sha256"],
        reference=reference,
    )
    request.app.state.event_log.append(event)
    return str(event["id"])


async def _prod_deposit(
    request: Request, installation: dict[str, Any], fiscal: str, kind: str, key: str
) -> JSONResponse:
    require_covered(installation, kind)
    party = Party.installation(installation)
    party.home(fiscal)
    require_consent(request, party, fiscal, kind)
    doc = await _deposit_body(request, kind)
    record = _deposit(request, PROD, fiscal, kind, doc, key, installation)
    return _deposited(request, kind, record)


@prod_router.post("/consents", status_code=201, summary="Ask a household for consent from an installed software (the "
                  "sandbox plays the household)", openapi_extra=_json_body(ConsentRequest.model_json_schema(),
                                                                           consent=False))
async def prod_post_consent(request: Request, installation: dict[str, Any] = Depends(require_installation)
                            ) -> JSONResponse:
    return await _grant(request, Party.installation(installation))


@prod_router.get("/consents/{consent_id}", summary="A consent granted to this installation, and its status")
def prod_get_consent(
    request: Request, consent_id: str, installation: dict[str, Any] = Depends(require_installation)
) -> dict[str, Any]:
    return _read_consent(request, Party.installation(installation), consent_id, own=True)


@prod_router.delete("/consents/{consent_id}", summary="Revoke a consent granted to this installation")
def prod_delete_consent(
    request: Request, consent_id: str, installation: dict[str, Any] = Depends(require_installation)
) -> dict[str, Any]:
    return _revoke(request, Party.installation(installation), consent_id, own=True)


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


@prod_router.post("/homes/{fiscal}/transfers", status_code=201, summary="Transfer a home's consumption data from an "
                  "installed software (Consent-Id)", openapi_extra=_json_body(TransferRequest.model_json_schema()))
async def prod_post_transfer(
    request: Request, fiscal: str, installation: dict[str, Any] = Depends(require_installation)
) -> JSONResponse:
    require_covered(installation, TRANSFER)
    asked = await _transfer_asked(request, Party.installation(installation), fiscal)
    body = asked.body
    # one installation's transfer of a home's months to one recipient: again, or any part of it again (a month of a
    # year it transferred), is the same; another installation's own transfer is its own
    what = {"installation": installation["id"], "home": fiscal, "recipient": asked.recipient, "period": body.period}
    data = canonical_json(what)
    digest = hashlib.sha256(data).hexdigest()
    store = store_of(request)

    def key(unit: str) -> str:  # a period's or a month's record: the transfer that covered it first
        return hashlib.sha256(canonical_json(what | {"period": unit})).hexdigest()

    with store.lock(f"{TRANSFERS}\n{installation['id']}"):
        covered = [store.get_record(TRANSFERS, PROD, key(month)) for month in asked.months]
        duplicate = all(covered)
        if duplicate:
            record = store.get_record(TRANSFERS, PROD, key(body.period)) or covered[0]
        else:  # written awaiting its event (event_id None), then marked with it
            record = {"kind": TRANSFER, "home": fiscal, "id": f"trf_{digest[:24]}", "sha256": digest,
                      "bytes": len(data), "document": what, "months": asked.months, "event_id": None}
            with store.batch():
                for unit, found in [(body.period, None), *zip(asked.months, covered, strict=True)]:
                    if found is None:
                        store.put_record(TRANSFERS, PROD, key(unit), record)
        assert record is not None
        if record.get("event_id", "") is None:  # new, or recorded by an attempt whose event append failed
            record = record | {"event_id": _emit(request, installation, TRANSFER, record, f"transfer:{record['id']}")}
            with store.batch():  # wherever the transfer is recorded: its period's and its months' records
                for unit in [record["document"]["period"], *record["months"]]:
                    found = store.get_record(TRANSFERS, PROD, key(unit))
                    if found is not None and found["id"] == record["id"]:
                        store.put_record(TRANSFERS, PROD, key(unit), record)
    set_outcome(request, "transfer-duplicate" if duplicate else "transfer-accepted", recipient=body.recipient)
    return JSONResponse({"transfer_id": record["id"], "recipient": body.recipient, "period": body.period,
                         "duplicate": duplicate}, status_code=200 if duplicate else 201)
