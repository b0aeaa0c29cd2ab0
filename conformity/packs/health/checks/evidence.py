"""What the documents, messaging and directory checks read in a trace: submissions, CDA documents,
XDM packages, patient identities and the practitioner logged in — all as the sandbox recorded them.

Documents are decoded from the recorded request bodies and parsed only by
:func:`conformity.xmlsafe.parse_xml`; ZIP packages are read in memory with bounded sizes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lxml import etree

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import performed, step_exchanges
from conformity.checks.model import Finding
from conformity.checks.trace import Exchange, Note, RunView, TraceView, views
from conformity.errors import XMLSecurityError
from conformity.packs.health.ins import INS_OIDS, ins_reference, normalise_traits
from conformity.xmlsafe import parse_xml

V3 = "urn:hl7-org:v3"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"v3": V3, "rim": RIM, "xsi": XSI}
XDM_METADATA = "IHE_XDM/SUBSET01/METADATA.XML"
PATIENT_ID_SCHEMES = {"urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427": "XDSDocumentEntry.patientId",
                      "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446": "XDSSubmissionSet.patientId"}
MAX_ZIP_MEMBER = 4 * 1024 * 1024
SUBMIT_PATH = re.compile(r"^/documents(/(?P<replaces>[^/]+)/replace)?$")


# ---------------------------------------------------------------------------------------------
# parameters and steps


def param(ctx: EvalContext, requirements: tuple[str, ...] | list[str], name: str, default: Any = None) -> Any:
    """A parameter of the first of ``requirements`` (planned in this run) that defines it."""
    for rid in requirements:
        value = ctx.param(rid, name)
        if value is not None:
            return value
    return default


def step_of(trace: TraceView, exchange: Exchange) -> Note | None:
    """The driver.perform step during which the software sent ``exchange`` (the first one noted after it)."""
    return next((n for n in trace.performed() if n.seq > exchange.seq), None)


def step_named(trace: TraceView, name: str) -> Note | None:
    return next((n for n in trace.performed() if n.data.get("name") == name), None)


def output(note: Note) -> dict[str, Any]:
    """The driver's output of a step ({} when it failed, was unsupported or invalid)."""
    data = note.data
    out = data.get("output")
    return out if isinstance(out, dict) and not data.get("output_invalid") else {}


def step_label(note: Note) -> str:
    return f"step {note.data.get('name') or note.data.get('action')!r} ({note.data.get('action')})"


def when(raw: dict[str, Any]) -> dt.datetime | None:
    """The recorded time of an exchange or note (end of the exchange), as an aware datetime."""
    value = raw.get("time")
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def started(exchange: Exchange) -> dt.datetime | None:
    """When the sandbox started to handle ``exchange``."""
    end = when(exchange.raw)
    return end - dt.timedelta(milliseconds=float(exchange.raw.get("duration_ms", 0))) if end else None


def problem_code(exchange: Exchange) -> str:
    body = exchange.response_json
    return str(body.get("code", "")) if isinstance(body, dict) else exchange.outcome


# ---------------------------------------------------------------------------------------------
# who is logged in, which patient a step is about


def practitioner_at(trace: TraceView, seq: int) -> str | None:
    """The national id of the practitioner whose token the identity provider issued last before ``seq``."""
    issued = [e for e in trace.exchanges("idp", method="POST", path="/token", before=seq)
              if e.outcome == "token-issued" and e.details.get("sub")]
    return str(issued[-1].details["sub"]) if issued else None


def claims_at(trace: TraceView, seq: int) -> dict[str, Any]:
    """The userinfo claims the identity provider served last before ``seq``."""
    served = [e for e in trace.exchanges("idp", path="/userinfo", before=seq) if e.status == 200]
    body = served[-1].response_json if served else None
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True, slots=True)
class Identity:
    """A patient as the trace shows it: the look-up step, the service's answer, whether it is qualified."""

    lookup: Note | None
    answer: Exchange | None

    @property
    def outcome(self) -> str:
        return self.answer.outcome if self.answer is not None else "none"

    @property
    def confirmed(self) -> bool:
        return bool(self.lookup and self.lookup.data.get("input", {}).get("identity_document_checked"))

    @property
    def matched(self) -> dict[str, Any] | None:
        """The identity of a single match (ins, oid, traits), else None."""
        if self.answer is None or self.answer.outcome != "lookup-match":
            return None
        body = self.answer.response_json
        identity = body.get("identity") if isinstance(body, dict) else None
        return identity if isinstance(identity, dict) else None

    @property
    def qualified(self) -> bool:
        """Qualified: one match for the look-up AND an identity document checked (PATIENTID-004)."""
        return self.matched is not None and self.confirmed

    def describe(self) -> str:
        if self.lookup is None:
            return "a patient the scenario never looked up"
        why = {"lookup-match": "single match" + ("" if self.confirmed else ", identity document not checked"),
               "lookup-no-match": "no match", "lookup-multiple": "several matches"}.get(self.outcome, self.outcome)
        return f"the patient of look-up {self.lookup.data.get('name')!r} ({why})"


def identity_for(trace: TraceView, patient: dict[str, Any] | None, before: int) -> Identity:
    """The look-up that identified ``patient`` ({"ref"} or {"traits"}) last before ``before``."""
    patient = patient or {}
    found = None
    for note in performed(trace, "patient.lookup"):
        if note.seq >= before:
            break
        data = note.data
        ref = (data.get("output") or {}).get("patient_ref") if isinstance(data.get("output"), dict) else None
        if ("ref" in patient and ref == patient["ref"]
                or "traits" in patient and normalise_traits(patient["traits"]) == normalise_traits(data.get("input", {}))):
            found = note
    if found is None:
        return Identity(None, None)
    answers = [e for e in step_exchanges(trace, found, "insi") if e.method == "POST" and e.local_path == "/lookup"]
    return Identity(found, answers[-1] if answers else None)


# ---------------------------------------------------------------------------------------------
# CDA documents


@dataclass(frozen=True, slots=True)
class Parsed:
    """A document's bytes and, when they parse safely, its root."""

    data: bytes
    root: etree._Element | None
    error: str | None

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()


def parse_document(data: bytes) -> Parsed:
    try:
        return Parsed(data, parse_xml(data, source="submitted document"), None)
    except XMLSecurityError as exc:
        return Parsed(data, None, exc.problems[0].message if exc.problems else str(exc))


def first(root: etree._Element, path: str) -> etree._Element | None:
    found = root.xpath(path, namespaces=NS)
    return found[0] if found and isinstance(found[0], etree._Element) else None


def is_clinical_document(root: etree._Element | None) -> bool:
    return root is not None and root.tag == f"{{{V3}}}ClinicalDocument"


def ins_ids(root: etree._Element, ins: str = "") -> list[etree._Element]:
    """recordTarget/patientRole/id elements whose root is an INS OID, and, given ``ins`` (the number the identity
    service returned), those holding it under any other root — an INS labelled as a local id is still the INS."""
    ids = root.xpath("v3:recordTarget/v3:patientRole/v3:id", namespaces=NS)
    return [el for el in ids if el.get("root") in INS_OIDS or (ins and el.get("extension") == ins)]


def document_code(root: etree._Element) -> str | None:
    el = first(root, "v3:code")
    return el.get("code") if el is not None else None


@dataclass(frozen=True)
class Submitted:
    """One submission the software sent to the shared record, and the record's answer."""

    exchange: Exchange
    step: Note | None
    replaces: str | None
    view: TraceView | None = None  #: the trace holding it (checks reading every scenario)

    @cached_property
    def body(self) -> dict[str, Any]:
        body = self.exchange.request_json
        return body if isinstance(body, dict) else {}

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @cached_property
    def document(self) -> Parsed | None:
        text = self.body.get("document")
        if not isinstance(text, str):
            return None
        try:
            return parse_document(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            return None

    @property
    def root(self) -> etree._Element | None:
        return self.document.root if self.document else None

    @property
    def accepted(self) -> bool:
        return self.exchange.status in (200, 201)

    @property
    def unique_id(self) -> str:
        return str(self.metadata.get("unique_id", ""))

    def sandbox_findings(self) -> list[dict[str, Any]]:
        body = self.exchange.response_json
        found = body.get("findings") if isinstance(body, dict) else None
        return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []

    def label(self) -> str:
        where = step_label(self.step) if self.step else "no step"
        return f"submission at #{self.exchange.seq} ({where})"


def submissions(subject: TraceView | RunView) -> list[Submitted]:
    """Every submission (POST /documents, POST /documents/{id}/replace) the shared record recorded (in every
    scenario of a :class:`RunView`)."""
    return [s for trace in views(subject) for s in trace.derived(trace_submissions)]


def trace_submissions(trace: TraceView) -> tuple[Submitted, ...]:
    """One trace's submissions, made once for every check judged on its view (each document parsed once)."""
    out = []
    for e in trace.exchanges("dmp", method="POST", path="/documents"):
        m = SUBMIT_PATH.match(e.local_path)
        if m:
            out.append(Submitted(e, step_of(trace, e), m["replaces"], trace))
    return tuple(out)


def patient_of(s: Submitted, subs: list[Submitted]) -> dict[str, Any] | None:
    """The patient a submission is about as the step named it; for a replacement, the replaced document's."""
    seen: set[str] = set()
    while s.step is not None:
        patient = (s.step.data.get("input") or {}).get("patient")
        if patient or not s.replaces or s.replaces in seen:
            return patient
        seen.add(s.replaces)
        earlier = [o for o in subs if o.view is s.view and o.unique_id == s.replaces and o.exchange.seq < s.exchange.seq]
        if not earlier:
            return None
        s = earlier[-1]
    return None


def distinct(subs: list[Submitted], *, with_metadata: bool = False) -> list[Submitted]:
    """One submission per distinct document (a retry or a resubmission of the same bytes counts once); with
    ``with_metadata``, per distinct document and metadata (the rules on the metadata judge every metadata a document
    was sent with: a retry whose metadata was built again is another submission to judge)."""
    seen: set[object] = set()
    out = []
    for s in subs:
        key: object = s.document.sha1 if s.document else s.exchange.seq
        if with_metadata:
            key = (key, json.dumps(s.metadata, sort_keys=True, default=str))
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def documents(subs: list[Submitted], *, with_metadata: bool = False) -> Iterator[tuple[Submitted, etree._Element]]:
    """The distinct submissions (:func:`distinct`) whose document parses to a ClinicalDocument, with its root."""
    for s in distinct(subs, with_metadata=with_metadata):
        if is_clinical_document(s.root):
            yield s, s.root


def no_submission(what: str = "document") -> Finding:
    return Finding(f"the software sent no {what} to the shared record in this scenario, so the rule could not be "
                   "verified")


# ---------------------------------------------------------------------------------------------
# messages and their IHE XDM packages


@dataclass(frozen=True)
class Package:
    """One message attachment: its JSON member, decoded bytes, and (for a ZIP) its members."""

    index: int
    attachment: dict[str, Any]
    data: bytes | None
    members: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None

    @property
    def is_zip(self) -> bool:
        return bool(self.data) and self.data[:4] == b"PK\x03\x04"  # type: ignore[index]  # the pair is narrowed by the filter above (root is not None, data is bytes)

    @property
    def patient(self) -> dict[str, Any]:
        """The attachment's ``patient`` member ({} when absent or not an object)."""
        patient = self.attachment.get("patient")
        return patient if isinstance(patient, dict) else {}

    @cached_property
    def metadata(self) -> Parsed | None:
        raw = self.members.get(XDM_METADATA)
        return parse_document(raw) if raw is not None else None

    def cda_documents(self) -> list[tuple[str, Parsed]]:
        """Every CDA document the attachment carries (the attachment itself, or XDM members)."""
        if not self.is_zip:
            parsed = parse_document(self.data) if self.data else None
            return [("attachment", parsed)] if parsed and is_clinical_document(parsed.root) else []
        out = []
        for name, raw in self.members.items():
            if name.upper().endswith(".XML") and name != XDM_METADATA:
                parsed = parse_document(raw)
                if is_clinical_document(parsed.root):
                    out.append((name, parsed))
        return out


def read_zip(data: bytes) -> tuple[dict[str, bytes], str | None]:
    """The members of a ZIP (bounded sizes, never extracted to disk), or an error."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            if sum(i.file_size for i in infos) > MAX_ZIP_MEMBER * 4 or len(infos) > 100:
                return {}, "the ZIP is larger than the checks read"
            return {i.filename: z.read(i) for i in infos if not i.is_dir() and i.file_size <= MAX_ZIP_MEMBER}, None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        return {}, f"not a readable ZIP: {exc}"


def packages(exchange: Exchange) -> list[Package]:
    """The attachments of a recorded message submission."""
    body = exchange.request_json
    attachments = body.get("attachments") if isinstance(body, dict) else None
    out = []
    for i, att in enumerate(attachments if isinstance(attachments, list) else []):
        if not isinstance(att, dict):
            continue
        try:
            data = base64.b64decode(re.sub(r"\s", "", str(att.get("content", ""))), validate=True)
        except (binascii.Error, ValueError):
            out.append(Package(i, att, None, error="content is not base64"))
            continue
        if data[:4] == b"PK\x03\x04":
            members, error = read_zip(data)
            out.append(Package(i, att, data, members, error))
        else:
            out.append(Package(i, att, data))
    return out


def xdm_patient_ids(metadata: etree._Element) -> list[tuple[str, str]]:
    """(where, value) of every patient id in METADATA.XML: patientId identifiers and sourcePatientId slots."""
    out = []
    for ext in metadata.iter(f"{{{RIM}}}ExternalIdentifier"):
        scheme = ext.get("identificationScheme", "")
        if scheme in PATIENT_ID_SCHEMES:
            out.append((PATIENT_ID_SCHEMES[scheme], ext.get("value", "")))
    for slot in metadata.iter(f"{{{RIM}}}Slot"):
        if slot.get("name") == "sourcePatientId":
            out.extend(("Slot[@name='sourcePatientId']", v.text or "") for v in slot.iter(f"{{{RIM}}}Value"))
    return out


def carries_ins_reference(value: str, ins: str = "") -> bool:
    """Whether a CX patient id names an INS authority (``…^^^&<INS OID>&ISO…``), or, given ``ins``, has it as its
    id under any other authority."""
    return any(f"&{oid}&" in value for oid in INS_OIDS) or bool(ins) and value.split("^", 1)[0] == ins


def expected_reference(identity: dict[str, Any]) -> str:
    return ins_reference(str(identity.get("ins", "")), str(identity.get("oid", "")))


def messages(subject: TraceView | RunView) -> list[Exchange]:
    """Every message submission the messaging service recorded (in every scenario of a :class:`RunView`)."""
    return [e for trace in views(subject) for e in trace.exchanges("mss", method="POST", path="/messages")]


def recipients(exchange: Exchange) -> list[str]:
    """The to and cc addresses of a message as sent (an address given alone, not in a list, is one address; a member of
    another type is shown as sent)."""
    body = exchange.request_json
    if not isinstance(body, dict):
        return []
    return [str(a) for key in ("to", "cc") for a in as_list(body.get(key))]


def as_list(value: Any) -> list[Any]:
    """A JSON member that should be a list: as it is, a single value as one item, nothing for null."""
    return value if isinstance(value, list) else [] if value is None else [value]


# ---------------------------------------------------------------------------------------------
# the session's directory (fixtures of the trace)


def address_key(address: str) -> str:
    return address.strip().casefold()


def directory_addresses(trace: TraceView) -> dict[str, dict[str, Any]]:
    """The session directory's messaging addresses: key → {address, active, national_id, finess}."""
    out = {}
    fx = trace.fixtures
    for o in fx.get("organisations", []):
        out[address_key(o["mss_address"])] = {"address": o["mss_address"], "active": o.get("active", True),
                                              "national_id": None, "finess": o["finess"]}
    for p in fx.get("practitioners", []):
        out[address_key(p["mss_address"])] = {"address": p["mss_address"], "active": p.get("active", True),
                                              "national_id": p["national_id"], "finess": p["organisation"]}
    return out


# ---------------------------------------------------------------------------------------------
# the shared record's answers


def creation_instant(value: str) -> dt.datetime | None:
    """A submission creationTime (UTC): YYYYMMDDHHMMSS or ISO 8601 ending in Z / +00:00."""
    value = (value or "").strip()
    try:
        if re.fullmatch(r"[0-9]{14}", value):
            return dt.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)", value):
            return dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return None


def listed(trace: TraceView, note: Note) -> Exchange | None:
    """The shared record's answer to the step's listing request."""
    found = [e for e in step_exchanges(trace, note, "dmp") if e.method == "GET" and e.local_path.startswith("/patients/")
             and e.local_path.endswith("/documents") and e.status == 200]
    return found[-1] if found else None


def served_documents(exchange: Exchange | None) -> list[dict[str, Any]]:
    body = exchange.response_json if exchange else None
    docs = body.get("documents") if isinstance(body, dict) else None
    return [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []


def step_submissions(trace: TraceView, note: Note) -> list[Submitted]:
    return [s for s in submissions(trace) if s.step is not None and s.step.seq == note.seq]


def final_list(trace: TraceView) -> Exchange | None:
    notes = trace.performed("document.list")
    return listed(trace, notes[-1]) if notes else None
