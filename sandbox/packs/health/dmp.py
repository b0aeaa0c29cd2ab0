"""Shared medical record (DMP-like): CDA R2 documents submitted with their metadata.

Test session, under ``/s/{sid}/dmp`` (access token; the reads and ``hide`` also take the session
token, with which the harness plays the patient):

* ``POST /documents`` — submit ``{"metadata", "software", "site", "document": <base64 CDA>}``
  (``application/json``): 201 with the entry; the same uniqueId with the same bytes again → 200 and
  the same entry (no duplicate); with other bytes → 409 ``unique-id-conflict``.
* ``GET /documents/{unique_id}`` — the entry and its document; ``GET /patients/{patient_id}/documents``
  — a patient's entries (``?include_deleted=true`` adds deleted ones).
* ``POST /documents/{unique_id}/replace`` — a new document (its own uniqueId) that replaces this one:
  the new entry has ``replaces``, the old one becomes ``deprecated`` with ``replaced_by``.
* ``DELETE /documents/{unique_id}`` — status ``deleted``, kept for audit, no longer served.
* ``POST /documents/{unique_id}/hide`` — the patient hides it from professionals: other professionals
  than its author no longer see it (lists skip it, reads answer 403 ``document-hidden``).
* ``GET /value-sets`` — the value sets of the coded metadata (:mod:`sandbox.packs.health.valuesets`);
  ``GET /schematron`` — the model CI-SIS Schematron rules (:mod:`conformity.packs.health.cda_rules`).

Faults (``PUT /admin/sessions/{sid}/faults``): ``unavailable`` n (503 storing nothing), ``lost_replies``
n (stored, then 503: a reply lost after the commit), ``patient_hides`` n (the patient hides the next
n newly stored documents at once), ``retry_after`` seconds, ``slow`` seconds.

Production, under ``/prod/dmp`` (installation token): ``POST /documents`` with the same validation
(any valid INS with an INS OID) and, on first acceptance, one data-received event. An installation sends documents
only when its label covers them (its wave pins, for its category, a referential covering the kind ``document``; else
403 ``kind-not-covered``, :func:`sandbox.deps.require_covered`), and only documents its own software sends: the
submission's ``software`` must name the installation's registration id and version (else 403
``document-other-software``: a document is paid to the label of the software that made it).
A document is received once from an installation: the same document again from it — its meaning (:func:`cda.meaning`: whatever its XML
declaration, comments, white space, attribute order, namespace prefixes, Unicode form or base64 line breaks, and
whichever id, set id, version number or replaced document it names) under its own or another uniqueId — answers 200
with the entry first recorded and emits no event (re-spelled under its own uniqueId it is no ``unique-id-conflict``).

The XML is parsed only by :func:`conformity.xmlsafe.parse_xml` with the configured limits, and
validated by :mod:`sandbox.packs.health.cda` (plus the official CDA R2 XML Schema when the sandbox is given it:
``--schema cda``, ``config.schemas["cda"]``).

Problem codes: ``unsupported-media-type`` 415; ``json-malformed``, ``document-not-base64``,
``xml-malformed``, ``xml-forbidden``, ``xml-too-deep`` 400; ``xml-too-large`` 413;
``invalid-request``, ``document-invalid`` (with ``findings``), ``patient-unknown``, ``site-mismatch``,
``replace-patient-mismatch`` 422; ``unique-id-conflict``, ``document-not-current`` 409;
``document-unknown`` 404; ``document-deleted`` 410; ``document-hidden``, ``not-author``, ``kind-not-covered``,
``document-other-software`` 403;
``service-unavailable`` 503 (+ Retry-After); and the token codes of :mod:`sandbox.deps`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from conformity.errors import XMLSecurityError
from conformity.packs.health import cda_rules
from conformity.packs.health.ins import ins_reference
from conformity.xmlsafe import parse_xml
from sandbox.clock import timestamp
from sandbox.deps import (
    Caller,
    FastJSONResponse,
    access_token_caller,
    base_url,
    bearer,
    fault,
    get_session,
    raise_if_unavailable,
    read_json,
    require_access_token,
    require_covered,
    require_installation,
    retry_after,
    store_of,
    take_fault,
    token_record,
)
from sandbox.events import data_received
from sandbox.packs.health import cda
from sandbox.packs.health.fixtures import registry_entries, registry_references
from sandbox.packs.health.valuesets import published
from sandbox.parsed import derived
from sandbox.problems import HTTPProblem, set_outcome

router = APIRouter(tags=["dmp"])
prod_router = APIRouter(tags=["dmp (production)"])

DOCUMENTS = "dmp-documents"
CONTENTS = "dmp-contents"
#: production: a document's meaning (:func:`cda.meaning`) → the uniqueId its installation first recorded it under (in
#: the installation's scope ``prod:<installation id>``: its ids and meanings are its own, as its messages' are)
MEANINGS = "dmp-meanings"
#: production records are scoped ``prod:<installation id>``
PROD = "prod"


# ---------------------------------------------------------------------------------------------
# request bodies


class Metadata(BaseModel):
    """The document entry metadata (XDS-like)."""

    model_config = ConfigDict(extra="forbid")
    unique_id: str = Field(..., min_length=1, max_length=200, description="OID or OID^extension, ≤ 64 characters.")
    patient_id: str = Field(..., min_length=1, max_length=200, description="INS^^^&OID&ISO^NH.")
    author_id: str = Field(..., min_length=1, max_length=100, description="National id of the author (8 + RPPS).")
    type_code: str = Field(..., min_length=1, max_length=20, description="LOINC document type code.")
    class_code: str = Field(..., min_length=1, max_length=100)
    confidentiality: str | list[str] = Field(..., description="Confidentiality code(s); contains the document's.")
    format: str = Field(..., min_length=1, max_length=200, description="formatCode.")
    facility_type: str = Field(..., min_length=1, max_length=100, description="healthcareFacilityTypeCode.")
    practice_setting: str = Field(..., min_length=1, max_length=100, description="practiceSettingCode.")
    creation_time: str = Field(..., min_length=1, max_length=40, description="UTC: YYYYMMDDHHMMSS or ISO 8601 Z.")
    hash: str = Field(..., min_length=1, max_length=128, description="Lowercase hex SHA-1 of the document bytes.")
    size: int = Field(..., ge=0, description="Length of the document in bytes.")
    title: str = Field(..., min_length=1, max_length=500)
    language_code: str | None = Field(None, max_length=20)
    author_role: str | None = Field(None, max_length=100)
    author_specialty: str | None = Field(None, max_length=100)


class SoftwareId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=200)
    version: str = Field(..., min_length=1, max_length=50)
    registration_id: str = Field(..., min_length=1, max_length=100)


class SiteId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., min_length=1, max_length=50, description="FINESS-like id of the care site.")


class Submission(BaseModel):
    """``POST /documents`` and ``POST /documents/{unique_id}/replace``."""

    model_config = ConfigDict(extra="forbid")
    metadata: Metadata
    software: SoftwareId
    site: SiteId
    document: str = Field(..., min_length=1, description="The CDA R2 document, base64.")


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with its local ``#/$defs/...`` references replaced by their definitions."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


#: the request body in the OpenAPI document (the body is read by hand, to answer 415 / 400 / 422 in order)
_OPENAPI_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": _inline(Submission.model_json_schema(), Submission.model_json_schema().get("$defs", {}))}}}}


# ---------------------------------------------------------------------------------------------
# state, callers


@dataclass(frozen=True, slots=True)
class DmpState:
    """Per-app state: the optional XML Schema (accept-or-replay is atomic under the store's lock of the scope,
    :func:`_locked`, which every worker process sharing the store takes)."""

    schema: etree.XMLSchema | None


def setup(app: FastAPI) -> None:
    xsd = app.state.config.schemas.get(cda.CDA_SCHEMA.name)
    app.state.dmp = DmpState(cda.load_schema(xsd) if xsd else None)


async def require_reader(request: Request, session_id: str) -> Caller:
    """An access token of the session, or its session token (the harness playing the patient); on the event loop
    (one store read: cheaper than FastAPI's thread hop for a plain function)."""
    token = bearer(request)
    record = token_record(request, token) if token else None
    if record is not None and record["kind"] == "session" and record["scope"] == session_id and not record["expired"]:
        return Caller(get_session(request, session_id), record)
    return access_token_caller(request, session_id)


def national_id(caller: Caller) -> str | None:
    """The practitioner's national id carried by an access token, if it carries one."""
    for key in ("national_id", "sub"):
        value = caller.token.get(key)
        if isinstance(value, str) and cda.NATIONAL_ID.match(value):
            return value
    return None


def public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


async def _slow(caller: Caller) -> None:
    seconds = fault(caller.session, "dmp").get("slow")
    if seconds:
        await asyncio.sleep(float(seconds))


def _unavailable(request: Request, caller: Caller) -> None:
    raise_if_unavailable(request, caller.session, "dmp", "the shared record (nothing was stored)")


def _locked(request: Request, scope: str) -> contextlib.AbstractContextManager[None]:
    """The store's lock for a check-then-write on one scope's records (a test session's, or the production role's):
    two scopes never wait for each other (with several workers on PostgreSQL, one lock for every session serialised
    every submission of the wave)."""
    return store_of(request).lock(f"dmp\n{scope}")


def _locked_batch(request: Request, scope: str) -> contextlib.AbstractContextManager[None]:
    """:func:`_locked` with the writes of the block committed together before it is let go (``Store.locked_batch``)."""
    return store_of(request).locked_batch(f"dmp\n{scope}")


def _take(request: Request, session: dict[str, Any], name: str) -> bool:
    """Consume one count of the dmp fault ``name`` atomically; True when one was left."""
    return take_fault(store_of(request), session, "dmp", name)


def _after_store(request: Request, caller: Caller, status: int, entry: dict[str, Any]) -> dict[str, Any]:
    """Injected after-commit events: the patient hides a new document; the reply is lost (503)."""
    sid = caller.session["id"]
    if status == 201 and _take(request, caller.session, "patient_hides"):
        with _locked(request, sid):
            entry = (store_of(request).get_record(DOCUMENTS, sid, entry["unique_id"]) or entry) | {
                "hidden": True, "hidden_at": timestamp()}
            store_of(request).put_record(DOCUMENTS, sid, entry["unique_id"], entry)
    if _take(request, caller.session, "lost_replies"):
        retry = retry_after(request, fault(caller.session, "dmp"))
        raise HTTPProblem(503, "service-unavailable", "the shared record is temporarily unavailable",
                      headers={"Retry-After": str(retry)}, retry_after=retry)
    return entry


# ---------------------------------------------------------------------------------------------
# reading and validating a submission


async def read_submission(request: Request) -> Submission:
    """The JSON body as a Submission, or a 415 / 400 / 422 problem."""
    return await read_json(request, Submission)


def decode_document(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPProblem(400, "document-not-base64", "document must be the CDA bytes in standard base64") from None


def parse_document(request: Request, document: bytes) -> etree._Element:
    """The CDA root, parsed only by the safe parser with the configured limits."""
    config = request.app.state.config
    if len(document) > config.max_xml_bytes:
        raise HTTPProblem(413, "xml-too-large", f"the document is {len(document)} bytes, more than the limit of "
                                            f"{config.max_xml_bytes}", limit=config.max_xml_bytes)
    try:
        return parse_xml(document, max_bytes=config.max_xml_bytes, max_depth=config.max_xml_depth, source="document")
    except XMLSecurityError as exc:
        message = exc.problems[0].message if exc.problems else str(exc)
        if message.startswith("not well-formed"):
            code = "xml-malformed"
        elif message.startswith("XML nesting deeper"):
            code = "xml-too-deep"
        elif message.startswith("XML is "):
            raise HTTPProblem(413, "xml-too-large", message) from None
        else:
            code = "xml-forbidden"
        raise HTTPProblem(400, code, message) from None


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a validated submission brings to the record."""

    entry: dict[str, Any]
    content: str
    sha256: str
    meaning: str | None = None  # production only: :func:`cda.meaning`


def validate_submission(request: Request, sub: Submission, *, session: dict[str, Any] | None,
                        caller_id: str | None, expected_site: set[str]) -> Accepted:
    """Decode, parse, validate; a 4xx problem with every finding, or the entry to record."""
    document = decode_document(sub.document)
    root = parse_document(request, document)
    metadata = sub.metadata.model_dump(exclude_none=True)
    findings, facts = cda.validate(root, metadata, document, schema=request.app.state.dmp.schema)
    if caller_id and sub.metadata.author_id != caller_id and cda.NATIONAL_ID.match(sub.metadata.author_id):
        findings.append(cda.Finding("author-not-authenticated", "metadata.author_id",
                                    f"the author {sub.metadata.author_id} is not the authenticated practitioner"))
    if findings:
        raise HTTPProblem(422, "document-invalid", f"{len(findings)} finding(s): {', '.join(cda.codes(findings))}",
                      findings=[f.as_dict() for f in findings])
    if sub.site.id not in expected_site:
        raise HTTPProblem(422, "site-mismatch", f"site {sub.site.id!r} is not the care site of this "
                                            f"{'test session' if session else 'installation'}")
    if session is None and (custodians := cda.custodian_sites(root)) != [sub.site.id]:
        # production: data from a site is the site's own document, not one an installation elsewhere copied (paid
        # per installation: documents of another care site, sent through this one, bought its payment); one care site
        # keeps it (a custodian naming two sites would be received, and counted, at each)
        named = ", ".join(custodians) or f"none with the FINESS root {cda.FINESS_ROOT}"
        if sub.site.id in custodians:
            raise HTTPProblem(422, "custodian-mismatch", f"the document's custodian names {len(custodians)} care sites "
                                                         f"({named}): one care site keeps a document, this "
                                                         f"installation's {sub.site.id}, named alone")
        raise HTTPProblem(422, "custodian-mismatch", f"the document's custodian ({named}) is not this installation's "
                                                     f"care site {sub.site.id}: a site sends the documents it keeps")
    if session is not None:
        if sub.metadata.patient_id not in derived(session["fixtures"], registry_references):
            raise HTTPProblem(422, "patient-unknown", "the patient is not in the identity registry of this session")
    sha256 = hashlib.sha256(document).hexdigest()
    entry = {"unique_id": sub.metadata.unique_id, "status": "approved", "hidden": False, "level": facts.level,
             "metadata": metadata, "software": sub.software.model_dump(), "site": sub.site.model_dump(),
             "sha256": sha256, "submitted": timestamp(), "replaces": None, "replaced_by": None, "deleted": None}
    return Accepted(entry, sub.document, sha256, cda.meaning(root) if session is None else None)


def record(request: Request, scope: str, accepted: Accepted, *, replaces: str | None = None,
           installation: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """Store an accepted document (or recognise its identical resubmission), atomically: (status, entry)."""
    store = store_of(request)
    new = accepted.entry
    uid = new["unique_id"]
    # a test session's document and its content: one commit, before the lock is let go (not an installation's,
    # whose event is emitted between)
    with _locked_batch(request, scope) if installation is None else _locked(request, scope):
        existing = store.get_record(DOCUMENTS, scope, uid)
        # production: the same document from the same installation, however re-spelled, is the one it recorded
        # (another installation's copy is not, its scope being its own: it would answer the author with the copier's
        # entry, and no event)
        meaning = accepted.meaning  # production: the scope is the installation's (see _prod_submit)
        if meaning is not None:
            same = store.get_record(MEANINGS, scope, meaning)
            first = store.get_record(DOCUMENTS, scope, same["unique_id"]) if same is not None else None
            if first is not None:
                if installation is not None and not first.get("_event_emitted"):
                    _emit(request, scope, first)
                set_outcome(request, "document-resubmitted", unique_id=first["unique_id"])
                return 200, first
        if existing is not None:
            if existing["sha256"] != accepted.sha256:
                raise HTTPProblem(409, "unique-id-conflict",
                              f"uniqueId {uid} is already used by a document with other content")
            if installation is not None and not existing.get("_event_emitted"):
                _emit(request, scope, existing)
            set_outcome(request, "document-resubmitted", unique_id=uid)
            return 200, existing
        if replaces is not None:
            old = store.get_record(DOCUMENTS, scope, replaces)
            if old is None or old["status"] != "approved":
                raise HTTPProblem(409, "document-not-current",
                              f"document {replaces} is {old['status'] if old else 'gone'}, it cannot be replaced")
            new["replaces"] = replaces
        if installation is not None:
            meta = new["metadata"]
            new["_event"] = data_received(
                installation, source=request.app.state.config.installation_event_source + ":dmp", kind="document",
                document_type=meta["type_code"], size=meta["size"], sha256=accepted.sha256, reference=uid)
            new["_event_emitted"] = False
        # checked: a base64 string, and an entry of validated members (strings, integers, booleans, None)
        store.put_record(CONTENTS, scope, uid, {"document": accepted.content}, checked=True)
        if meaning is not None:
            store.put_record(MEANINGS, scope, meaning, {"unique_id": uid}, checked=True)
        store.put_record(DOCUMENTS, scope, uid, new, checked=installation is None)
        if replaces is not None:
            old = store.get_record(DOCUMENTS, scope, replaces) or {}
            store.put_record(DOCUMENTS, scope, replaces, old | {"status": "deprecated", "replaced_by": uid})
        if installation is not None:
            _emit(request, scope, new)
    set_outcome(request, "document-replaced" if replaces else "document-accepted", unique_id=uid)
    return 201, new


def _emit(request: Request, scope: str, entry: dict[str, Any]) -> None:
    """Append the entry's data-received event (fsync'd), then mark it emitted."""
    request.app.state.event_log.append(entry["_event"])
    entry["_event_emitted"] = True
    store_of(request).put_record(DOCUMENTS, scope, entry["unique_id"], entry)


#: a unique id of the characters its rule allows (:data:`cda.UNIQUE_ID`): ``quote(uid, safe="")`` leaves all of them
#: but ``^`` as they are
_QUOTED_AS_IS = re.compile(r"[A-Za-z0-9._\-^]*")


def _quote(unique_id: str) -> str:
    """``quote(unique_id, safe="")``, without urllib's layers for the usual unique id."""
    return unique_id.replace("^", "%5E") if _QUOTED_AS_IS.fullmatch(unique_id) else quote(unique_id, safe="")


def _created(status: int, entry: dict[str, Any], base: str) -> JSONResponse:
    location = f"{base}/documents/{_quote(entry['unique_id'])}"
    return FastJSONResponse(public(entry), status_code=status, headers={"Location": location})


# ---------------------------------------------------------------------------------------------
# test-session endpoints


def _session_submit(request: Request, caller: Caller, sub: Submission, replaces: str | None) -> tuple[int, dict[str, Any]]:
    session = caller.session
    old = None
    if replaces is not None:
        old = _get(request, session["id"], replaces)
        if sub.metadata.unique_id == replaces:
            raise HTTPProblem(409, "unique-id-conflict", "a replacement needs its own uniqueId")
    accepted = validate_submission(request, sub, session=session, caller_id=national_id(caller),
                                   expected_site={s["site_id"] for s in session["fixtures"].get("sites", [])})
    if old is not None and old["metadata"]["patient_id"] != accepted.entry["metadata"]["patient_id"]:
        raise HTTPProblem(422, "replace-patient-mismatch", "a replacement must concern the same patient")
    return record(request, session["id"], accepted, replaces=replaces)


def _get(request: Request, scope: str, unique_id: str) -> dict[str, Any]:
    entry = store_of(request).get_record(DOCUMENTS, scope, unique_id)
    if entry is None:
        raise HTTPProblem(404, "document-unknown", f"no document {unique_id!r} in the shared record")
    return entry


def _base(request: Request, session_id: str) -> str:
    return base_url(request) + f"/s/{session_id}/dmp"


#: documents up to this size (base64 characters) are validated and stored on the event loop: a few hundred
#: microseconds, less than handing the request to a thread and back; larger ones go to the thread pool, so that one
#: big document never holds every other request
INLINE_CHARS = 64 * 1024


async def _submit(work: Callable[..., tuple[int, dict[str, Any]]], request: Request, *args: Any) -> tuple[int, dict[str, Any]]:
    """``work(request, *args)`` (validate and store a submission): inline for a small document, else in a thread."""
    sub = next((a for a in args if isinstance(a, Submission)), None)
    if (sub is not None and len(sub.document) <= INLINE_CHARS and request.app.state.dmp.schema is None
            and store_of(request).on_loop):
        return work(request, *args)
    return await run_in_threadpool(work, request, *args)


@router.post("/documents", status_code=201, summary="Submit a CDA R2 document", openapi_extra=_OPENAPI_BODY)
async def post_document(request: Request, session_id: str,
                        caller: Caller = Depends(require_access_token)) -> JSONResponse:
    faulty = bool(fault(caller.session, "dmp"))  # the usual submission has none: none to take, none to wait for
    try:
        if faulty:
            _unavailable(request, caller)
        sub = await read_submission(request)
        status, entry = await _submit(_session_submit, request, caller, sub, None)
        if faulty:
            entry = _after_store(request, caller, status, entry)
        return _created(status, entry, _base(request, session_id))
    finally:
        if faulty:
            await _slow(caller)


async def _lean_post_document(request: Request, session_id: str) -> Response:
    """``POST /documents`` as its route serves it — its dependency, then its endpoint — without FastAPI's route
    matching, dependency solving and exit stacks (:class:`sandbox.app.SessionRoutes`): the request every run sends
    most."""
    return await post_document(request, session_id, await require_access_token(request, session_id))


#: the routes served lean (:func:`sandbox.app.lean_routes`): (method, path) → (the endpoint it stands for, handler)
LEAN_ROUTES = {("POST", "/documents"): (post_document, _lean_post_document)}


@router.post("/documents/{unique_id}/replace", status_code=201, summary="Replace a document by a new version",
             openapi_extra=_OPENAPI_BODY)
async def replace_document(request: Request, session_id: str, unique_id: str,
                           caller: Caller = Depends(require_access_token)) -> JSONResponse:
    try:
        _unavailable(request, caller)
        sub = await read_submission(request)
        status, entry = await _submit(_session_submit, request, caller, sub, unique_id)
        entry = _after_store(request, caller, status, entry)
        return _created(status, entry, _base(request, session_id))
    finally:
        await _slow(caller)


def _visible(caller: Caller, entry: dict[str, Any]) -> bool:
    """Hidden documents are shown to the patient (session token) and to their author only."""
    if not entry.get("hidden") or caller.token["kind"] == "session":
        return True
    return bool(national_id(caller) == entry["metadata"]["author_id"])


@router.get("/value-sets", summary="The value sets of the coded submission metadata")
async def value_sets(request: Request, session_id: str, caller: Caller = Depends(require_reader)) -> dict[str, Any]:
    set_outcome(request, "value-sets-served")
    return published()


@router.get("/schematron", summary="The Schematron rules every submitted document must pass (DOCSHARE 2.0)")
async def schematron(request: Request, session_id: str, caller: Caller = Depends(require_reader)) -> Response:
    set_outcome(request, "schematron-served")
    return Response(cda_rules.SCHEMATRON, media_type="application/xml")


@router.get("/documents/{unique_id}", summary="One document: its entry and content")
async def get_document(request: Request, session_id: str, unique_id: str,
                       caller: Caller = Depends(require_reader)) -> dict[str, Any]:
    try:
        entry = _get(request, session_id, unique_id)
        if entry["status"] == "deleted":
            raise HTTPProblem(410, "document-deleted", f"document {unique_id} was deleted")
        if not _visible(caller, entry):
            raise HTTPProblem(403, "document-hidden", "the patient has hidden this document from professionals")
        content = store_of(request).get_record(CONTENTS, session_id, unique_id) or {}
        set_outcome(request, "document-retrieved", unique_id=unique_id)
        return public(entry) | {"document": content.get("document")}
    finally:
        await _slow(caller)


@router.get("/patients/{patient_id}/documents", summary="A patient's documents")
async def list_documents(request: Request, session_id: str, patient_id: str, include_deleted: bool = False,
                         caller: Caller = Depends(require_reader)) -> dict[str, Any]:
    try:
        known = {e["ins"]: ins_reference(e["ins"], e["oid"]) for e in registry_entries(caller.session["fixtures"])}
        reference = known.get(patient_id, patient_id)
        if reference not in known.values():
            raise HTTPProblem(404, "patient-unknown", "the patient is not in the identity registry of this session")
        entries = [e for e in store_of(request).list_records(DOCUMENTS, session_id)
                   if e["metadata"]["patient_id"] == reference and (include_deleted or e["status"] != "deleted")
                   and _visible(caller, e)]
        set_outcome(request, "documents-listed", count=len(entries))
        return {"patient_id": reference, "documents": [public(e) for e in entries]}
    finally:
        await _slow(caller)


@router.delete("/documents/{unique_id}", summary="Delete a document (kept for audit)")
async def delete_document(request: Request, session_id: str, unique_id: str,
                          caller: Caller = Depends(require_access_token)) -> dict[str, Any]:
    try:
        with _locked(request, session_id):
            entry = _get(request, session_id, unique_id)
            author = national_id(caller)
            if author is not None and author != entry["metadata"]["author_id"]:
                raise HTTPProblem(403, "not-author", "only the author of a document may delete it")
            if entry["status"] != "deleted":
                entry |= {"status": "deleted", "deleted": timestamp()}
                store_of(request).put_record(DOCUMENTS, session_id, unique_id, entry)
        set_outcome(request, "document-deleted", unique_id=unique_id)
        return public(entry)
    finally:
        await _slow(caller)


@router.post("/documents/{unique_id}/hide", summary="The patient hides a document from professionals")
async def hide_document(request: Request, session_id: str, unique_id: str,
                        caller: Caller = Depends(require_reader)) -> dict[str, Any]:
    try:
        with _locked(request, session_id):
            entry = _get(request, session_id, unique_id)
            if entry["status"] == "deleted":
                raise HTTPProblem(410, "document-deleted", f"document {unique_id} was deleted")
            if not entry.get("hidden"):
                entry |= {"hidden": True, "hidden_at": timestamp()}
                store_of(request).put_record(DOCUMENTS, session_id, unique_id, entry)
        set_outcome(request, "document-masked", unique_id=unique_id)
        return public(entry)
    finally:
        await _slow(caller)


# ---------------------------------------------------------------------------------------------
# production


#: the data kind of a document received by the shared record (the pack's ``data_kinds``)
KIND = "document"


def made_by(sub: Submission, installation: dict[str, Any]) -> None:
    """403 ``document-other-software`` unless the submission names the installation's software (its registration id
    and version): the event pays the installation's label, so the document must come from the software it labels."""
    software = installation["software"]
    expected = (software.get("registration_id") or "", software["version"])
    named = (sub.software.registration_id, sub.software.version)
    if not expected[0]:
        raise HTTPProblem(403, "document-other-software", f"installation {installation['id']} names no registration "
                                                          f"id for its software {software['id']}: a document names "
                                                          "the software that sent it by its registration id")
    if named != expected:
        raise HTTPProblem(403, "document-other-software",
                          f"the submission names software {named[0]} version {named[1]}, but installation "
                          f"{installation['id']} runs {expected[0]} version {expected[1]}: a document is sent by the "
                          "software that made it", expected={"registration_id": expected[0], "version": expected[1]},
                          got={"registration_id": named[0], "version": named[1]})


def _prod_submit(request: Request, installation: dict[str, Any], sub: Submission) -> tuple[int, dict[str, Any]]:
    made_by(sub, installation)  # first: a refusal costs no parse, validation nor meaning
    accepted = validate_submission(request, sub, session=None, caller_id=None,
                                   expected_site={str(installation["site"]["id"])})
    # an installation's unique ids are its own: another's document filed first under the same id (predictable: an
    # OID root and a counter) would make this one's a 409, never received nor paid
    return record(request, f"{PROD}:{installation['id']}", accepted, installation=installation)


@prod_router.post("/documents", status_code=201, summary="Submit a document from an installed software",
                  openapi_extra=_OPENAPI_BODY)
async def prod_post_document(request: Request,
                             installation: dict[str, Any] = Depends(require_installation)) -> JSONResponse:
    require_covered(installation, KIND)
    sub = await read_submission(request)
    status, entry = await _submit(_prod_submit, request, installation, sub)
    return _created(status, entry, base_url(request) + "/prod/dmp")
