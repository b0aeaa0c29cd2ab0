"""CDA R2 validation for the shared record: pure functions from a parsed document to findings.

``validate`` returns ALL findings, never only the first: header rules (``check_document``), the
body (level 1: a base64 PDF; level 3: structured sections and entries), the consistency of the
submission metadata with the document and its bytes (``check_metadata``) and, when a schema is
given, the HL7 CDA R2 XML Schema (``xsd_findings``). Every finding has a stable kebab-case code
(listed in ``CODES``), an XPath-like location and a message.

The rules follow the DOCSHARE referential (``referentials/health/DOCSHARE/*.toml``): document
types and templateIds (DOCSHARE-002, -010), level-1 body and format code (DOCSHARE-003), INS
(DOCSHARE-004), author national id (DOCSHARE-006), effective time (DOCSHARE-007), confidentiality
N (DOCSHARE-008), LOINC type code (DOCSHARE-009), hash (SHA-1, lowercase hex) and size
(DOCSHARE-015), unique id (DOCSHARE-019). Parsing untrusted bytes is not done here: callers
parse with :func:`conformity.xmlsafe.parse_xml` and pass the root.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from conformity.packs.health.ins import INS_OIDS, ins_reference, is_valid_ins
from conformity.text import as_read
from conformity.xmlsafe import element_path
from sandbox.schemas import OfficialSchema

NS = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_V3 = f"{{{NS}}}"

TYPE_ID_ROOT = "2.16.840.1.113883.1.3"
TYPE_ID_EXTENSION = "POCD_HD000040"
CISIS_BRANCH = "1.2.250.1.213.1.1.1."
HEADER_TEMPLATE_ID = "1.2.250.1.213.1.1.1.1"
LOINC = "2.16.840.1.113883.6.1"
CONFIDENTIALITY_SYSTEM = "2.16.840.1.113883.5.25"
CONFIDENTIALITY_CODES = ("N", "R", "V")
INTERPRETATION_SYSTEM = "2.16.840.1.113883.5.83"
RPPS_ROOT = "1.2.250.1.71.4.2.1"
PDF_FORMAT_CODE = "urn:ihe:iti:xds-sd:pdf:2008"
#: DOCSHARE-015: the submission's hash is the SHA-1 of the document bytes (as in IHE XDS.b).
HASH_ALGORITHM = "sha1"
#: DOCSHARE-007 says "not later than the submission"; this much clock skew is tolerated.
CLOCK_SKEW = dt.timedelta(minutes=2)

NATIONAL_ID = re.compile(r"^8[0-9]{11}$")
OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
UNIQUE_ID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+(\^[A-Za-z0-9.\-_]{1,60})?$")
_TS = re.compile(r"^(?P<date>[0-9]{4,14})(?P<frac>\.[0-9]+)?(?P<tz>[+\-][0-9]{4})?$")
_TS_PRECISE = re.compile(r"^[0-9]{14}(\.[0-9]+)?[+\-][0-9]{4}$")


@dataclass(frozen=True, slots=True)
class DocumentType:
    """One allowed document type: LOINC code, content model, templateIds (the current one first)."""

    code: str
    name: str
    template_ids: tuple[str, ...]

    @property
    def template_id(self) -> str:
        return self.template_ids[0]


B = CISIS_BRANCH
#: The document types the shared record takes, for every DOCSHARE version a wave pins: DOCSHARE 2.2 uses the real
#: CI-SIS codes (lab report .55, discharge letter LOINC 11490-0 with .29, patient summary .51 with 60591-5, imaging
#: report .45); DOCSHARE 1.0-2.1 used model values (.21, 34106-7, .13, .30), still accepted so their waves run. The
#: checks judge with the pinned version's own table; the dispensation record (.40) is a model value in every version.
DOCUMENT_TYPES: dict[str, DocumentType] = {t.code: t for t in (
    DocumentType("11502-2", "lab report (CR-BIO)", (B + "55", B + "21")),
    DocumentType("11490-0", "hospital discharge letter (LDL-SES)", (B + "29",)),
    DocumentType("34106-7", "hospital discharge letter (model code of DOCSHARE 1.0-2.1)", (B + "29",)),
    DocumentType("60591-5", "patient summary (IPS-FR; medical summary VSM in DOCSHARE 1.0-2.1)", (B + "51", B + "13")),
    DocumentType("18748-4", "imaging report (CR-IMG)", (B + "45", B + "30")),
    DocumentType("60593-1", "pharmacy dispensation record (model)", (B + "40",)),
)}

#: Every finding code, and what it means.
CODES: dict[str, str] = {
    "cda-not-clinical-document": "the root is not a ClinicalDocument in the urn:hl7-org:v3 namespace",
    "cda-encoding-not-utf8": "the document is not encoded in UTF-8",
    "cda-type-id-invalid": f"typeId is not root {TYPE_ID_ROOT} extension {TYPE_ID_EXTENSION}",
    "cda-template-id-missing": "a required templateId (CI-SIS header or document type) is absent",
    "cda-template-id-conflict": "a CI-SIS templateId of another document type is present",
    "cda-id-invalid": "the document id is absent or its root is not an OID or UUID",
    "cda-code-missing": "the document code is absent",
    "cda-code-system-invalid": f"the document code is not from LOINC ({LOINC})",
    "cda-type-code-not-allowed": "the LOINC type code is not an allowed document type",
    "cda-effective-time-invalid": "effectiveTime is absent or not a valid HL7 TS",
    "cda-effective-time-imprecise": "effectiveTime lacks second precision or a UTC offset",
    "cda-effective-time-future": "effectiveTime is later than the submission",
    "cda-confidentiality-invalid": f"confidentialityCode is absent, not N/R/V or not from {CONFIDENTIALITY_SYSTEM}",
    "cda-confidentiality-not-normal": "confidentialityCode is not N (the shared record takes N only)",
    "cda-record-target-invalid": "there is not exactly one recordTarget/patientRole",
    "cda-patient-ins-missing": "recordTarget/patientRole has no id with an INS OID as root",
    "cda-patient-ins-invalid": "the patient's INS (id extension) is not a valid NIR/NIA",
    "cda-author-missing": "there is no author/assignedAuthor",
    "cda-author-id-missing": f"an assignedAuthor has no id with root {RPPS_ROOT} (RPPS)",
    "cda-author-id-invalid": "an assignedAuthor's national id is not 8 + 11 digits",
    "cda-custodian-missing": "custodian/assignedCustodian/representedCustodianOrganization is absent",
    "cda-body-missing": "component has neither a nonXMLBody nor a structuredBody",
    "cda-body-media-type-invalid": "nonXMLBody/text is not mediaType application/pdf, representation B64",
    "cda-body-not-base64": "nonXMLBody/text is not valid base64",
    "cda-body-not-pdf": "nonXMLBody/text does not decode to a PDF (%PDF-)",
    "cda-section-invalid": "a structuredBody section lacks a code, a title or its narrative text",
    "cda-entry-invalid": "a structured entry (observation) lacks a coded code, a typed value or a valid interpretation",
    "cda-xsd-invalid": "the document is not valid against the CDA R2 XML Schema",
    "metadata-unique-id-invalid": "uniqueId is not an OID or OID^extension of at most 64 characters",
    "metadata-type-code-mismatch": "typeCode differs from the document code",
    "metadata-patient-id-invalid": "patientId is not INS^^^&OID&ISO^NH with a valid INS and an INS OID",
    "metadata-patient-id-mismatch": "patientId differs from the document's INS and OID",
    "metadata-author-id-invalid": "author is not a national id (8 + 11 digits)",
    "metadata-author-id-mismatch": "author is not an author of the document",
    "metadata-confidentiality-mismatch": "confidentialityCode does not contain the document's code",
    "metadata-creation-time-invalid": "creationTime is not a UTC timestamp (YYYYMMDDHHMMSS or ISO 8601 with Z)",
    "metadata-creation-time-mismatch": "creationTime is not the instant of the document's effectiveTime",
    "metadata-format-mismatch": f"formatCode does not match the body level ({PDF_FORMAT_CODE} for level 1 only)",
    "metadata-hash-not-sha1": "hash is the SHA-256 of the document, the shared record expects SHA-1",
    "metadata-hash-mismatch": "hash is not the lowercase hex SHA-1 of the document bytes",
    "metadata-size-mismatch": "size is not the length of the document in bytes",
    "author-not-authenticated": "the author is not the practitioner of the access token (added by the service)",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule a submitted document breaks: stable code, where, and what."""

    code: str
    location: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "location": self.location, "message": self.message}


@dataclass(frozen=True, slots=True)
class Facts:
    """What the header says, for the metadata checks and for the record."""

    type_code: str | None = None
    ins: str | None = None
    ins_oid: str | None = None
    author_ids: tuple[str, ...] = ()
    confidentiality: str | None = None
    effective_time: dt.datetime | None = None
    level: int | None = None


# ---------------------------------------------------------------------------------------------
# helpers


def _find(el: etree._Element, path: str) -> etree._Element | None:
    return el.find(path.replace("v3:", _V3))


def _findall(el: etree._Element, path: str) -> list[etree._Element]:
    found: list[etree._Element] = el.findall(path.replace("v3:", _V3))
    return found


#: the OID of FINESS ids (a care site's, as the custodian of a document names it)
FINESS_ROOT = "1.2.250.1.71.4.2.2"


def custodian_sites(root: etree._Element) -> list[str]:
    """The FINESS ids (``id`` with the FINESS root) of the document's custodian organisation: the care site that
    keeps it."""
    org = _find(root, "v3:custodian/v3:assignedCustodian/v3:representedCustodianOrganization")
    return [str(i.get("extension", "")) for i in _findall(org, "v3:id")
            if i.get("root") == FINESS_ROOT] if org is not None else []




def parse_ts(value: str) -> dt.datetime | None:
    """An HL7 TS as an aware datetime (naive when it has no offset), or None when not a valid TS."""
    m = _TS.match(value or "")
    if not m or len(m["date"]) % 2 or (m["frac"] and len(m["date"]) != 14):
        return None
    digits = m["date"].ljust(14, "0")
    if len(m["date"]) == 4:
        digits = m["date"] + "0101000000"
    elif len(m["date"]) == 6:
        digits = m["date"] + "01000000"
    try:
        when = dt.datetime.strptime(digits, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if m["frac"]:
        when = when.replace(microsecond=int((m["frac"][1:] + "000000")[:6]))
    if m["tz"]:
        sign = 1 if m["tz"][0] == "+" else -1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][3:5])
        if hours > 14 or minutes > 59:
            return None
        when = when.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes)))
    return when


def parse_creation_time(value: str) -> dt.datetime | None:
    """A submission creationTime in UTC: ``YYYYMMDDHHMMSS`` (XDS form) or ISO 8601 ending in Z/+00:00."""
    value = (value or "").strip()
    if re.fullmatch(r"[0-9]{14}", value):
        try:
            return dt.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)", value):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_patient_id(value: str) -> tuple[str, str] | None:
    """``INS^^^&OID&ISO^NH`` → (INS, OID) when the INS is valid and the OID an INS OID."""
    m = re.fullmatch(r"([0-9A-B]{15})\^\^\^&([0-9.]+)&ISO\^NH", value or "")
    if not m or m[2] not in INS_OIDS or not is_valid_ins(m[1]):
        return None
    return m[1], m[2]


# ---------------------------------------------------------------------------------------------
# the document


def check_document(root: etree._Element, *, now: dt.datetime | None = None) -> tuple[list[Finding], Facts]:
    """Every header and body rule the document breaks, and the facts read from its header."""
    if root.tag != f"{_V3}ClinicalDocument":
        return [Finding("cda-not-clinical-document", element_path(root),
                        f"root element is {root.tag!r}, expected {{{NS}}}ClinicalDocument")], Facts()
    out: list[Finding] = []
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8"):
        out.append(Finding("cda-encoding-not-utf8", "/", f"document encoding is {encoding}, expected UTF-8"))
    _check_type_id(root, out)
    type_code = _check_code(root, out)
    _check_template_ids(root, type_code, out)
    _check_id(root, out)
    effective = _check_effective_time(root, out, now)
    confidentiality = _check_confidentiality(root, out)
    ins, oid = _check_patient(root, out)
    authors = _check_authors(root, out)
    if _find(root, "v3:custodian/v3:assignedCustodian/v3:representedCustodianOrganization") is None:
        out.append(Finding("cda-custodian-missing", "/ClinicalDocument/custodian",
                           "custodian/assignedCustodian/representedCustodianOrganization is required"))
    level = _check_body(root, out)
    return out, Facts(type_code, ins, oid, tuple(authors), confidentiality, effective, level)


def _check_type_id(root: etree._Element, out: list[Finding]) -> None:
    el = _find(root, "v3:typeId")
    if el is None or el.get("root") != TYPE_ID_ROOT or el.get("extension") != TYPE_ID_EXTENSION:
        out.append(Finding("cda-type-id-invalid", "/ClinicalDocument/typeId",
                           f"typeId must have root {TYPE_ID_ROOT} and extension {TYPE_ID_EXTENSION}"))


def _check_code(root: etree._Element, out: list[Finding]) -> str | None:
    el = _find(root, "v3:code")
    if el is None or not el.get("code"):
        out.append(Finding("cda-code-missing", "/ClinicalDocument/code", "the document type code is required"))
        return None
    code: str = el.get("code", "")
    if el.get("codeSystem") != LOINC:
        out.append(Finding("cda-code-system-invalid", element_path(el),
                           f"codeSystem is {el.get('codeSystem')!r}, expected LOINC {LOINC}"))
    if code not in DOCUMENT_TYPES:
        out.append(Finding("cda-type-code-not-allowed", element_path(el),
                           f"type code {code!r} is not allowed (allowed: {', '.join(DOCUMENT_TYPES)})"))
    return code


def _check_template_ids(root: etree._Element, type_code: str | None, out: list[Finding]) -> None:
    present = [el.get("root", "") for el in _findall(root, "v3:templateId")]
    if HEADER_TEMPLATE_ID not in present:
        out.append(Finding("cda-template-id-missing", "/ClinicalDocument/templateId",
                           f"the CI-SIS header templateId {HEADER_TEMPLATE_ID} is required"))
    expected = DOCUMENT_TYPES[type_code].template_ids if type_code in DOCUMENT_TYPES else ()
    if expected and not set(expected) & set(present):
        out.append(Finding("cda-template-id-missing", "/ClinicalDocument/templateId",
                           f"the templateId {' or '.join(expected)} of document type {type_code} is required"))
    others = {tid: t for t in DOCUMENT_TYPES.values() for tid in t.template_ids if expected and tid not in expected}
    for tid in present:
        if tid in others:
            out.append(Finding("cda-template-id-conflict", "/ClinicalDocument/templateId",
                               f"templateId {tid} belongs to {others[tid].code} {others[tid].name}, "
                               f"not to type {type_code}"))
    if not any(t.startswith(CISIS_BRANCH) for t in present):
        out.append(Finding("cda-template-id-missing", "/ClinicalDocument/templateId",
                           f"no templateId under the CI-SIS branch {CISIS_BRANCH}*"))


def _check_id(root: etree._Element, out: list[Finding]) -> None:
    el = _find(root, "v3:id")
    value = el.get("root", "") if el is not None else ""
    if not (OID.match(value) or UUID.match(value)):
        out.append(Finding("cda-id-invalid", "/ClinicalDocument/id",
                           "the document id must have a root that is an OID or a UUID"
                           + (f" (got {value!r})" if value else "")))


def _check_effective_time(root: etree._Element, out: list[Finding], now: dt.datetime | None) -> dt.datetime | None:
    el = _find(root, "v3:effectiveTime")
    value = el.get("value", "") if el is not None else ""
    when = parse_ts(value)
    where = "/ClinicalDocument/effectiveTime"
    if when is None:
        out.append(Finding("cda-effective-time-invalid", where, f"effectiveTime value {value!r} is not an HL7 TS"))
        return None
    if not _TS_PRECISE.match(value):
        out.append(Finding("cda-effective-time-imprecise", where,
                           f"effectiveTime {value!r} needs second precision and a UTC offset (YYYYMMDDHHMMSS+ZZZZ)"))
        return None
    now = now or dt.datetime.now(dt.UTC)
    if when > now + CLOCK_SKEW:
        out.append(Finding("cda-effective-time-future", where, f"effectiveTime {value} is later than the submission"))
    return when


def _check_confidentiality(root: etree._Element, out: list[Finding]) -> str | None:
    el = _find(root, "v3:confidentialityCode")
    where = "/ClinicalDocument/confidentialityCode"
    code: str | None = el.get("code") if el is not None else None
    if el is None or code not in CONFIDENTIALITY_CODES or el.get("codeSystem") != CONFIDENTIALITY_SYSTEM:
        out.append(Finding("cda-confidentiality-invalid", where,
                           f"confidentialityCode must be N, R or V from {CONFIDENTIALITY_SYSTEM}"))
        return code
    if code != "N":
        out.append(Finding("cda-confidentiality-not-normal", where,
                           f"confidentialityCode {code} is not accepted: the shared record takes N only"))
    return code


def _check_patient(root: etree._Element, out: list[Finding]) -> tuple[str | None, str | None]:
    roles = _findall(root, "v3:recordTarget/v3:patientRole")
    if len(roles) != 1:
        out.append(Finding("cda-record-target-invalid", "/ClinicalDocument/recordTarget",
                           f"exactly one recordTarget/patientRole is required, found {len(roles)}"))
        if not roles:
            return None, None
    ids = [el for el in _findall(roles[0], "v3:id") if el.get("root") in INS_OIDS]
    if not ids:
        out.append(Finding("cda-patient-ins-missing", element_path(roles[0]) + "/id",
                           f"no id with an INS OID root ({', '.join(INS_OIDS)})"))
        return None, None
    el = ids[0]
    ins = el.get("extension", "")
    if not is_valid_ins(ins):
        out.append(Finding("cda-patient-ins-invalid", element_path(el),
                           "the INS must be 15 characters whose last two digits are the NIR control key"))
    return ins, el.get("root")


def _check_authors(root: etree._Element, out: list[Finding]) -> list[str]:
    assigned = _findall(root, "v3:author/v3:assignedAuthor")
    if not assigned:
        out.append(Finding("cda-author-missing", "/ClinicalDocument/author", "at least one author is required"))
        return []
    found = []
    for a in assigned:
        ids = [el for el in _findall(a, "v3:id") if el.get("root") == RPPS_ROOT]
        if not ids:
            out.append(Finding("cda-author-id-missing", element_path(a) + "/id",
                               f"assignedAuthor needs an id with root {RPPS_ROOT} and the national id as extension"))
            continue
        national = ids[0].get("extension", "")
        if not NATIONAL_ID.match(national):
            out.append(Finding("cda-author-id-invalid", element_path(ids[0]),
                               f"national id {national!r} is not 8 followed by the 11-digit RPPS"))
            continue
        found.append(national)
    return found


def _check_body(root: etree._Element, out: list[Finding]) -> int | None:
    non_xml = _find(root, "v3:component/v3:nonXMLBody")
    structured = _find(root, "v3:component/v3:structuredBody")
    if non_xml is not None:
        _check_level1(non_xml, out)
        return 1
    if structured is not None:
        _check_level3(structured, out)
        return 3
    out.append(Finding("cda-body-missing", "/ClinicalDocument/component",
                       "component must hold a nonXMLBody (level 1) or a structuredBody (level 3)"))
    return None


def _check_level1(body: etree._Element, out: list[Finding]) -> None:
    text = _find(body, "v3:text")
    where = element_path(body) + "/text"
    if text is None or text.get("mediaType") != "application/pdf" or text.get("representation") != "B64":
        out.append(Finding("cda-body-media-type-invalid", where,
                           "nonXMLBody/text must have mediaType application/pdf and representation B64"))
        if text is None:
            return
    try:
        pdf = base64.b64decode("".join((text.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        out.append(Finding("cda-body-not-base64", where, "nonXMLBody/text is not valid base64"))
        return
    if not pdf.startswith(b"%PDF-"):
        out.append(Finding("cda-body-not-pdf", where, "nonXMLBody/text does not decode to a PDF file (%PDF-)"))


def _check_level3(body: etree._Element, out: list[Finding]) -> None:
    sections = _findall(body, ".//v3:section")
    if not sections:
        out.append(Finding("cda-section-invalid", element_path(body), "a structuredBody needs at least one section"))
    for section in sections:
        missing = [name for name in ("code", "title", "text") if _find(section, f"v3:{name}") is None]
        if missing:
            out.append(Finding("cda-section-invalid", element_path(section), f"section lacks {', '.join(missing)}"))
    for obs in _findall(body, ".//v3:entry//v3:observation"):
        _check_observation(obs, out)


def _check_observation(obs: etree._Element, out: list[Finding]) -> None:
    problems = []
    code = _find(obs, "v3:code")
    if code is None or not code.get("code") or not code.get("codeSystem"):
        problems.append("a code with code and codeSystem")
    values = _findall(obs, "v3:value")
    if not values or any(v.get(f"{{{XSI}}}type") is None for v in values):
        problems.append("a value with xsi:type")
    for v in values:
        if (v.get(f"{{{XSI}}}type") or "").endswith("PQ") and v.get("value") is not None and not v.get("unit"):
            problems.append("a unit for its PQ value")
    for interp in _findall(obs, "v3:interpretationCode"):
        if interp.get("codeSystem") != INTERPRETATION_SYSTEM:
            problems.append(f"an interpretationCode from {INTERPRETATION_SYSTEM}")
    if problems:
        out.append(Finding("cda-entry-invalid", element_path(obs), "observation needs " + "; ".join(problems)))


# ---------------------------------------------------------------------------------------------
# metadata


def check_metadata(metadata: Mapping[str, Any], facts: Facts, document: bytes) -> list[Finding]:
    """Every inconsistency between the submission metadata, the header facts and the document bytes."""
    out: list[Finding] = []

    def add(code: str, field: str, message: str) -> None:
        out.append(Finding(code, f"metadata.{field}", message))

    unique_id = str(metadata.get("unique_id", ""))
    if len(unique_id) > 64 or not UNIQUE_ID.match(unique_id):
        add("metadata-unique-id-invalid", "unique_id",
            "uniqueId must be an OID or OID^extension of at most 64 characters")
    type_code = metadata.get("type_code")
    if facts.type_code is not None and type_code != facts.type_code:
        add("metadata-type-code-mismatch", "type_code", f"typeCode {type_code!r} differs from the document code "
                                                        f"{facts.type_code!r}")
    patient_id = str(metadata.get("patient_id", ""))
    if parse_patient_id(patient_id) is None:
        add("metadata-patient-id-invalid", "patient_id", "patientId must be INS^^^&OID&ISO^NH with a valid INS and "
                                                         "an INS OID")
    elif facts.ins and facts.ins_oid and patient_id != ins_reference(facts.ins, facts.ins_oid):
        add("metadata-patient-id-mismatch", "patient_id",
            f"patientId differs from the document's {ins_reference(facts.ins, facts.ins_oid)}")
    author_id = str(metadata.get("author_id", ""))
    if not NATIONAL_ID.match(author_id):
        add("metadata-author-id-invalid", "author_id", "author must be a national id: 8 followed by the 11-digit RPPS")
    elif facts.author_ids and author_id not in facts.author_ids:
        add("metadata-author-id-mismatch", "author_id", f"author {author_id} is not an author of the document")
    _check_confidentiality_metadata(metadata.get("confidentiality"), facts, add)
    created = parse_creation_time(str(metadata.get("creation_time", "")))
    if created is None:
        add("metadata-creation-time-invalid", "creation_time",
            "creationTime must be UTC: YYYYMMDDHHMMSS or ISO 8601 ending in Z")
    elif facts.effective_time is not None and facts.effective_time.tzinfo is not None \
            and created.replace(microsecond=0) != facts.effective_time.astimezone(dt.UTC).replace(microsecond=0):
        add("metadata-creation-time-mismatch", "creation_time",
            "creationTime is not the instant of effectiveTime "
            f"({facts.effective_time.astimezone(dt.UTC):%Y%m%d%H%M%S} UTC)")
    fmt = metadata.get("format")
    if facts.level == 1 and fmt != PDF_FORMAT_CODE:
        add("metadata-format-mismatch", "format", f"a level-1 document has formatCode {PDF_FORMAT_CODE}")
    elif facts.level == 3 and fmt == PDF_FORMAT_CODE:
        add("metadata-format-mismatch", "format", f"{PDF_FORMAT_CODE} is for level-1 documents, this one is level 3")
    declared = str(metadata.get("hash", ""))
    if declared != hashlib.new(HASH_ALGORITHM, document).hexdigest():
        if declared.lower() == hashlib.sha256(document).hexdigest():
            add("metadata-hash-not-sha1", "hash", "hash is the SHA-256 of the document; the shared record expects the "
                                                  "lowercase hex SHA-1 (DOCSHARE-015)")
        else:
            add("metadata-hash-mismatch", "hash", "hash is not the lowercase hex SHA-1 of the document bytes")
    if metadata.get("size") != len(document):
        add("metadata-size-mismatch", "size",
            f"size is {metadata.get('size')!r}, the document has {len(document)} bytes")
    return out


def _check_confidentiality_metadata(value: Any, facts: Facts, add: Any) -> None:
    codes = [value] if isinstance(value, str) else list(value or [])
    if facts.confidentiality and facts.confidentiality not in codes:
        add("metadata-confidentiality-mismatch", "confidentiality",
            f"confidentialityCode {codes} does not contain the document's {facts.confidentiality}")


# ---------------------------------------------------------------------------------------------
# XML Schema


class _LocalOnly(etree.Resolver):  # type: ignore[misc]  # lxml ships no type stubs: etree.Resolver is Any to mypy
    """Refuses to load any schema part that is not a local file."""

    def resolve(self, url: str | None, pubid: str | None, context: Any) -> Any:
        if url and re.match(r"^[a-z][a-z0-9+.\-]*://", url, re.IGNORECASE) and not url.lower().startswith("file:"):
            raise ValueError(f"schema part {url} is not a local file")
        return None


def _located_cda_xsd() -> Path | None:
    from conformity.packs.health.checks.cda import cda_xsd_path  # the evaluator's copy (checks load lazily)

    return cda_xsd_path()


@lru_cache(maxsize=4)
def load_schema(path: Path) -> etree.XMLSchema:
    """The XML Schema at a trusted local path, parsed once, with no network and no entities."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalOnly())
    return etree.XMLSchema(etree.parse(str(path), parser))


#: the official schema the shared record also validates uploads against, when the sandbox is given it
CDA_SCHEMA = OfficialSchema("cda", "the HL7 CDA R2 XML Schema (HL7's normative CDA.xsd, not redistributed): "
                            "documents uploaded to the shared record are also validated against it",
                            locate=_located_cda_xsd, check=load_schema)


def xsd_findings(schema: etree.XMLSchema, root: etree._Element, *, limit: int = 50) -> list[Finding]:
    """The schema errors of a document, as ``cda-xsd-invalid`` findings (at most ``limit``)."""
    if schema.validate(root):
        return []
    out = []
    tree = root.getroottree()
    for err in list(schema.error_log)[:limit]:
        out.append(Finding("cda-xsd-invalid", _error_location(tree, err), f"line {err.line}: {err.message}"))
    return out


def _error_location(tree: etree._ElementTree, err: etree._LogEntry) -> str:
    """libxml2 reports paths like ``/*/*[8]``; name them like the other findings."""
    try:
        found = tree.xpath(err.path) if err.path else []
    except etree.XPathError:
        found = []
    if found and isinstance(found[0], etree._Element):
        return element_path(found[0])
    return f"line {err.line}"


# ---------------------------------------------------------------------------------------------
# all together


def validate(root: etree._Element, metadata: Mapping[str, Any], document: bytes, *,
             schema: etree.XMLSchema | None = None, now: dt.datetime | None = None) -> tuple[list[Finding], Facts]:
    """All findings for a submitted document (empty: valid) and the facts read from its header."""
    findings, facts = check_document(root, now=now)
    if findings and findings[0].code == "cda-not-clinical-document":
        return findings, facts
    findings += check_metadata(metadata, facts, document)
    if schema is not None:
        findings += xsd_findings(schema, root)
    return findings, facts


#: what a document's meaning leaves out (children of ClinicalDocument): its own identifiers and version links — a copy
#: of a document under another id, or a "new version" of it with the same content, is the same document again
_IDENTIFIERS = frozenset(f"{_V3}{tag}" for tag in ("id", "setId", "versionNumber", "relatedDocument"))
_SCHEMA_LOCATIONS = frozenset(f"{{{XSI}}}{name}" for name in ("schemaLocation", "noNamespaceSchemaLocation"))
_XSI_TYPE = f"{{{XSI}}}type"
_SPACES = re.compile(r"\s+")


def _plain(text: str | None) -> str | None:
    """A text or attribute value as it reads (:func:`conformity.text.as_read`; None when nothing is left)."""
    return (as_read(text) or None) if text is not None else None


def _drop(el: etree._Element) -> None:
    """Remove an element, keeping the text that follows it."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


#: an instant to the minute at least, with its offset: ``YYYYMMDDHHMM[SS[.S+]]±HHMM``
_INSTANT = re.compile(r"(\d{12})(\d{2})?(\.\d{1,4})?([+-])(\d{2})(\d{2})")


def _in_utc(value: str) -> str:
    """A ``value`` that is an instant (to the minute at least, with its offset) written in UTC at its precision: one
    instant, whichever time zone it was written in (a document re-exported after a clock change says the same)."""
    found = _INSTANT.fullmatch(value)
    if found is None:
        return value
    minutes, seconds, fraction, sign, hours, mins = found.groups()
    try:
        when = dt.datetime.strptime(minutes, "%Y%m%d%H%M")
    except ValueError:
        return value
    offset = (int(hours) * 60 + int(mins)) * (1 if sign == "+" else -1)
    try:
        utc = when - dt.timedelta(minutes=offset)
    except OverflowError:
        return value
    return f"{utc:%Y%m%d%H%M}{seconds or ''}{fraction or ''}+0000"


def _bytes_of(text: str) -> str:
    """A base64 body as the bytes it decodes to (their canonical base64: unused bits or padding spelled otherwise,
    the same bytes); as it is when it is not base64."""
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode("ascii")
    except (binascii.Error, ValueError):
        return text


def meaning(root: etree._Element) -> str:
    """The SHA-256 of what a document says, whatever its bytes: its C14N 2.0 form (no XML declaration, attributes in
    order, namespace prefixes renamed, ``xsi:type`` values resolved) without comments, processing instructions,
    schema locations or the document's own identifiers and version links (``id``, ``setId``, ``versionNumber``,
    ``relatedDocument``), texts and attribute values NFC with white space runs as one space, instants (``value``
    attributes to the minute at least, with an offset) in UTC, a base64 body as the bytes it decodes to. Two
    submissions of one meaning are one document received (one event), however re-spelled and under whichever unique
    id."""
    doc = copy.deepcopy(root)
    for child in list(doc):
        if child.tag in _IDENTIFIERS:
            _drop(child)
    etree.strip_tags(doc, etree.Comment, etree.ProcessingInstruction)  # their text is dropped, the text around kept
    for el in doc.iter():
        for name in [n for n in el.attrib if n in _SCHEMA_LOCATIONS]:
            del el.attrib[name]
        for name, value in el.attrib.items():
            plain = _plain(value) or ""
            if name == "value":
                plain = _in_utc(plain)
            if name == _XSI_TYPE:
                prefix, _, local = plain.rpartition(":")
                plain = f"{{{el.nsmap.get(prefix or None, '')}}}{local}"
            el.set(name, plain)
        if el.get("representation") == "B64" and el.text:
            el.text = _bytes_of(_SPACES.sub("", el.text))
        else:
            el.text = _plain(el.text)
        el.tail = _plain(el.tail)
    canonical = etree.canonicalize(doc, with_comments=False, strip_text=True, rewrite_prefixes=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def codes(findings: Sequence[Finding]) -> list[str]:
    """The distinct codes of some findings, in order of first appearance."""
    return list(dict.fromkeys(f.code for f in findings))
