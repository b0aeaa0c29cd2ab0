"""Secure messaging (MSSanté imitation): messages between directory addresses, patient-bound attachments.

Session role (``/s/{sid}/mss``, access token of the session):

* ``POST /messages`` — ``{"from", "to": [...], "cc": [...], "subject", "body", "attachments": [...],
  "message_id"?}``; the sender and every recipient must be addresses of the session's directory;
  each attachment (``filename``, ``content_type``, base64 ``content``, optional LOINC
  ``document_type`` for a CDA) must carry the patient's INS and its OID. Nothing is delivered unless
  the whole message is valid (every recipient active in the directory). 201 ``{"message_id"}``;
  resubmitting the same ``message_id`` with the
  same content answers 200 ``{"message_id", "duplicate": true}`` and delivers nothing twice.
* ``GET /mailboxes/{address}/messages`` — the messages delivered to a directory address (to or cc)
  in this session, oldest first. (The sandbox does not restrict which mailbox a token may read: the
  harness reads recipients' mailboxes to see what the software under test sent.)

Production role (``/prod/mss``, installation token): ``POST /messages`` with the same rules except
directory membership (no fixtures in production: addresses must be well formed and end in
``.mssante.fr`` or ``.mssante.test``), and a message carries data (a body that reads as something, or an attachment:
else 422 ``message-empty``, no event); an accepted message emits one data-received event, and a
resubmission of the same ``message_id`` by the same installation emits none. An installation sends messages only
when its label covers them (its wave pins, for its category, a referential covering the kind ``message``; else 403
``kind-not-covered``, :func:`sandbox.deps.require_covered`). A message is received once: the same message again
from the same installation under another ``message_id`` (its meaning, :func:`meaning`: sender and recipients whatever
their case and whether to or cc, subject and body whatever their white space and Unicode form, attachments by their
decoded bytes, type and patient, whatever their names and base64 line breaks) answers 200 ``{"message_id": <the
first one's>, "duplicate": true}`` and emits no event.

Problem codes (422 unless said): sender-invalid, sender-unknown, recipient-invalid, recipient-unknown,
recipient-inactive, attachment-patient-missing, attachment-patient-invalid, attachment-content-invalid (400:
not base64), attachment-empty,
attachment-filename-invalid, attachment-document-type-invalid, attachment-too-large (413),
message-too-large (413), message-empty (production), message-id-conflict (409), mailbox-unknown (404), kind-not-covered (403),
unsupported-media-type (415), json-malformed (400), invalid-request, service-unavailable (503, fault ``mss.unavailable``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from conformity.packs.health.ins import INS_OIDS, is_valid_ins
from conformity.signing import canonical_json, sha256_hex
from conformity.text import as_read
from sandbox.auth_first import auth_first
from sandbox.clock import timestamp
from sandbox.deps import (
    Caller,
    json_body,
    raise_if_unavailable,
    require_access_token,
    require_covered,
    require_installation,
    store_of,
)
from sandbox.events import data_received
from sandbox.packs.health.directory import address_key, known_addresses
from sandbox.problems import HTTPProblem, set_outcome
from sandbox.services.directory import SessionCaller
from sandbox.sessions import new_id

SERVICE = "mss"
COLLECTION = "mss-messages"
#: production: ``<installation id>:<meaning>`` → the message id its first message of that meaning was received under
MEANINGS = "mss-meanings"
PROD_SCOPE = "prod"

MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 1_400_000  # body (UTF-8) + decoded attachments
MAX_RECIPIENTS = 50
CDA_MEDIA_TYPES = {"application/xml", "text/xml", "application/hl7-cda+xml", "application/hl7v3+xml"}

ADDRESS = re.compile(r"^[^\s\x00-\x1f\x7f@<>()\[\],;:\"\\]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                     r"mssante\.(?:fr|test)$", re.IGNORECASE)
FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")



async def session_caller(request: Request) -> Caller:
    """The session's access token, checked before the body is read (401 before 400/415: sandbox.auth_first)."""
    return await require_access_token(request, request.path_params["session_id"])


router = APIRouter(tags=["mss"], route_class=auth_first(session_caller))
prod_router = APIRouter(tags=["mss (production)"], route_class=auth_first(require_installation))

Installation = Annotated[dict[str, Any], Depends(require_installation)]

#: check-then-record of a message id must not interleave (one delivery, one event per message id): under the store's
#: lock "mss", which every worker process sharing the store takes


class Patient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ins: str | None = Field(None, max_length=64, description="INS: 15-character NIR or NIA with its control key.")
    oid: str | None = Field(None, max_length=64, description="OID of the INS assigning authority.")


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(..., min_length=1, max_length=255)
    content_type: str = Field(..., max_length=127, pattern=r"^[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+(\s*;.*)?$")
    content: str = Field(..., max_length=4 * MAX_ATTACHMENT_BYTES // 3 + 1024, description="Base64 (RFC 4648).")
    patient: Patient | None = Field(None, description="The patient the attachment is about (mandatory).")
    document_type: str | None = Field(None, pattern=r"^[0-9]{1,7}-[0-9]$", description="LOINC type of a CDA document.")


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(..., alias="from", min_length=1, max_length=320)
    to: list[str] = Field(..., min_length=1, max_length=MAX_RECIPIENTS)
    cc: list[str] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    subject: str = Field("", max_length=998)
    body: str = Field("", max_length=MAX_MESSAGE_BYTES)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    message_id: str | None = Field(None, pattern=r"^[!-~]{1,250}$",
                                   description="Client-chosen id; resubmitting it never duplicates the message.")


@dataclass(frozen=True, slots=True)
class Checked:
    """A message that passed every rule: its canonical form, size, hash, declared document type and the SHA-256 of
    each attachment's decoded bytes (in order)."""

    message: dict[str, Any]
    content_sha256: str
    size: int
    document_type: str | None
    attachments_sha256: tuple[str, ...] = ()


# --- validation (shared by both roles) ---------------------------------------------------------

def _check_addresses(body: MessageRequest, directory: dict[str, dict[str, Any]] | None) -> None:
    """Refuse a malformed sender or recipient, or (session role) one absent from the directory."""
    if not ADDRESS.fullmatch(body.sender.strip()):
        raise HTTPProblem(422, "sender-invalid", f"sender {body.sender!r} is not a secure-messaging address",
                      sender=body.sender)
    recipients = body.to + body.cc
    malformed = [a for a in recipients if not ADDRESS.fullmatch(a.strip())]
    if malformed:
        raise HTTPProblem(422, "recipient-invalid", "not secure-messaging addresses: " + ", ".join(map(repr, malformed)),
                      recipients=malformed)
    if directory is None:
        return
    if address_key(body.sender) not in directory:
        raise HTTPProblem(422, "sender-unknown", f"sender {body.sender} is not in the directory", sender=body.sender)
    unknown = [a for a in recipients if address_key(a) not in directory]
    inactive = [a for a in recipients if address_key(a) in directory and not directory[address_key(a)].get("active", True)]
    if inactive and not unknown:
        raise HTTPProblem(422, "recipient-inactive", "recipients marked inactive in the directory: " + ", ".join(inactive),
                      recipients=inactive)
    if unknown:
        raise HTTPProblem(422, "recipient-unknown", "recipients not in the directory: " + ", ".join(unknown),
                      recipients=unknown)


def _decode(index: int, att: Attachment) -> bytes:
    try:
        raw = base64.b64decode(re.sub(r"[\t\n\r ]", "", att.content), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPProblem(400, "attachment-content-invalid", f"attachment {index} ({att.filename}): content is not base64",
                      attachment=index) from exc
    if not raw:
        raise HTTPProblem(422, "attachment-empty", f"attachment {index} ({att.filename}) is empty", attachment=index)
    if len(raw) > MAX_ATTACHMENT_BYTES:
        raise HTTPProblem(413, "attachment-too-large", f"attachment {index} ({att.filename}) is {len(raw)} bytes; "
                      f"the limit is {MAX_ATTACHMENT_BYTES}", attachment=index, limit=MAX_ATTACHMENT_BYTES)
    return raw


def _check_attachment(index: int, att: Attachment) -> bytes:
    """Check one attachment's name, patient identity, type and content; return its decoded bytes."""
    if FILENAME_FORBIDDEN.search(att.filename) or att.filename.strip() in ("", ".", ".."):
        raise HTTPProblem(422, "attachment-filename-invalid", f"attachment {index}: a file name without path or control "
                      "characters is required", attachment=index)
    patient = att.patient
    missing = [f for f in ("ins", "oid") if patient is None or not (getattr(patient, f) or "").strip()]
    if missing:
        raise HTTPProblem(422, "attachment-patient-missing", f"attachment {index} ({att.filename}) does not carry the "
                      f"patient identity ({' and '.join(missing)} missing)", attachment=index, missing=missing)
    assert patient is not None and patient.ins is not None and patient.oid is not None
    if not is_valid_ins(patient.ins.strip()):
        raise HTTPProblem(422, "attachment-patient-invalid", f"attachment {index} ({att.filename}): {patient.ins!r} is not "
                      "a valid INS (15 characters with a matching control key)", attachment=index, field="ins")
    if patient.oid.strip() not in INS_OIDS:
        raise HTTPProblem(422, "attachment-patient-invalid", f"attachment {index} ({att.filename}): {patient.oid!r} is not "
                      f"an INS OID (one of {', '.join(INS_OIDS)})", attachment=index, field="oid")
    media = att.content_type.split(";")[0].strip().lower()
    if att.document_type is not None and media not in CDA_MEDIA_TYPES:
        raise HTTPProblem(422, "attachment-document-type-invalid", f"attachment {index} ({att.filename}): a document_type "
                      f"is declared for CDA (XML) attachments only, not {media}", attachment=index)
    return _decode(index, att)


def check_message(body: MessageRequest, directory: dict[str, dict[str, Any]] | None) -> Checked:
    """Every rule a message must meet before anything is delivered or recorded."""
    _check_addresses(body, directory)
    size = len(body.body.encode("utf-8"))
    digests = []
    for index, att in enumerate(body.attachments):
        raw = _check_attachment(index, att)
        size += len(raw)
        digests.append(hashlib.sha256(raw).hexdigest())
        if size > MAX_MESSAGE_BYTES:
            raise HTTPProblem(413, "message-too-large", f"body and attachments exceed {MAX_MESSAGE_BYTES} bytes",
                          limit=MAX_MESSAGE_BYTES)
    if size > MAX_MESSAGE_BYTES:
        raise HTTPProblem(413, "message-too-large", f"body and attachments exceed {MAX_MESSAGE_BYTES} bytes",
                      limit=MAX_MESSAGE_BYTES)
    message = body.model_dump(by_alias=True, exclude={"message_id"}, exclude_none=True)
    document_type = next((a.document_type for a in body.attachments if a.document_type), None)
    return Checked(message, sha256_hex(canonical_json(message)), size, document_type, tuple(digests))


def meaning(body: MessageRequest, checked: Checked) -> str:
    """The SHA-256 of what a checked message says, whatever its spelling: its sender, the set of its recipients
    (case-folded, to and cc alike), its subject and body (NFC, white space runs as one space, trimmed), and the
    multiset of its attachments' decoded bytes (their digests, as checked), document types and patients (not their
    file names or media types)."""
    attachments = sorted(
        [digest, a.document_type or "",
         (a.patient.ins or "").strip() if a.patient else "", (a.patient.oid or "").strip() if a.patient else ""]
        for digest, a in zip(checked.attachments_sha256, body.attachments, strict=True))
    what = {"from": body.sender.strip().casefold(), "to": sorted({a.strip().casefold() for a in body.to + body.cc}),
            "subject": as_read(body.subject), "body": as_read(body.body), "attachments": attachments}
    return sha256_hex(canonical_json(what))


def _record(message_id: str, checked: Checked, **extra: Any) -> dict[str, Any]:
    canonical = {"message_id": message_id} | checked.message
    return {"message_id": message_id, **checked.message, "received": timestamp(), "bytes": checked.size,
            "content_sha256": checked.content_sha256, "sha256": sha256_hex(canonical_json(canonical)), **extra}


def _duplicate(request: Request, response: Response, existing: dict[str, Any], checked: Checked) -> dict[str, Any]:
    if existing["content_sha256"] != checked.content_sha256:
        raise HTTPProblem(409, "message-id-conflict", f"message {existing['message_id']} was already received with "
                      "other content", message_id=existing["message_id"])
    response.status_code = 200
    set_outcome(request, "message-duplicate", message_id=existing["message_id"])
    return {"message_id": existing["message_id"], "duplicate": True}


# --- session role ------------------------------------------------------------------------------

@router.post("/messages", status_code=201, summary="Send a secure message", dependencies=[Depends(json_body)])
def send(request: Request, response: Response, body: MessageRequest,
         caller: SessionCaller) -> dict[str, Any]:
    store, sid = store_of(request), caller.session["id"]
    raise_if_unavailable(request, caller.session, SERVICE, "secure messaging")
    directory = known_addresses(caller.session["fixtures"])
    checked = check_message(body, directory)
    message_id = body.message_id or new_id("msg")
    with store.lock("mss"):
        existing = store.get_record(COLLECTION, sid, message_id)
        if existing is not None:
            return _duplicate(request, response, existing, checked)
        store.put_record(COLLECTION, sid, message_id, _record(message_id, checked))
    sender_entry = directory[address_key(body.sender)]
    set_outcome(request, "message-accepted", message_id=message_id, recipients=len(body.to) + len(body.cc),
                attachments=len(body.attachments),
                sender_matches_token=sender_entry.get("national_id") == caller.token.get("sub"))
    return {"message_id": message_id}


@router.get("/mailboxes/{address}/messages", summary="Messages delivered to a directory address")
def mailbox(request: Request, address: str, caller: SessionCaller) -> list[dict[str, Any]]:
    sid = caller.session["id"]
    key = address_key(address)
    if key not in known_addresses(caller.session["fixtures"]):
        raise HTTPProblem(404, "mailbox-unknown", f"{address} is not an address of this session's directory")
    found = [m for m in store_of(request).list_records(COLLECTION, sid)
             if key in {address_key(a) for a in m["to"] + m.get("cc", [])}]
    set_outcome(request, "mailbox-read", count=len(found))
    return found


# --- production role ---------------------------------------------------------------------------

@prod_router.post("/messages", status_code=201, summary="Send a secure message (installed software)",
                  dependencies=[Depends(json_body)])
def prod_send(request: Request, response: Response, body: MessageRequest,
              installation: Installation) -> dict[str, Any]:
    store, config = store_of(request), request.app.state.config
    require_covered(installation, "message")
    checked = check_message(body, None)
    if not body.attachments and not as_read(body.body):
        # a data-received event is money (a proof of use counts messages): a message of a subject alone, or of
        # nothing, carries no data
        raise HTTPProblem(422, "message-empty", "the message has neither a body nor an attachment: it carries no data, "
                                                "and is not received (no data-received event)")
    message_id = body.message_id or new_id("msg")
    key = f"{installation['id']}:{message_id}"  # message ids are the installation's own
    same = f"{installation['id']}:{meaning(body, checked)}"  # and so are its messages' meanings
    with store.lock("mss"):
        existing = store.get_record(COLLECTION, PROD_SCOPE, key)
        first = store.get_record(MEANINGS, PROD_SCOPE, same) if existing is None else None
        if first is not None and first["message_id"] != message_id:  # the same message under another id
            response.status_code = 200
            set_outcome(request, "message-duplicate", message_id=first["message_id"])
            return {"message_id": first["message_id"], "duplicate": True}
        if existing is not None and (existing.get("event_id") or existing["content_sha256"] != checked.content_sha256):
            return _duplicate(request, response, existing, checked)
        # new, or recorded by an attempt that failed before its event was written: emit it now
        record = existing or _record(message_id, checked, installation_id=installation["id"], event_id=None)
        store.put_record(COLLECTION, PROD_SCOPE, key, record)
        if existing is None:
            store.put_record(MEANINGS, PROD_SCOPE, same, {"message_id": message_id})
        event = data_received(installation, source=f"{config.installation_event_source}:{SERVICE}", kind="message",
                              document_type=checked.document_type, size=checked.size, sha256=record["sha256"],
                              reference=message_id)
        request.app.state.event_log.append(event)
        store.put_record(COLLECTION, PROD_SCOPE, key, record | {"event_id": event["id"]})
    set_outcome(request, "message-accepted", message_id=message_id, event_id=event["id"])
    return {"message_id": message_id}
