"""CDA R2 test data: documents the shared record accepts, and their submission bodies.

``build_cda`` writes a level-1 (PDF body) or level-3 (lab report with structured entries)
ClinicalDocument that is valid against the HL7 CDA R2 XML Schema and passes :mod:`sandbox.packs.health.cda`;
``submission`` derives the metadata from a document (hash, size, type, patient, author, time) and
returns the full JSON body of ``POST /dmp/documents``; ``session_submission`` does both from a
test session's fixtures. Used by tests, benchmarks and the demo.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from conformity.packs.health.ins import ins_reference
from conformity.xmlsafe import parse_xml
from sandbox.packs.health import cda
from sandbox.store import Store

XSI = cda.XSI
SAMPLE_ROOT = "1.2.250.1.999.42.1"  # the model OID root under which the sample software numbers its documents
GENDER_SYSTEM = "2.16.840.1.113883.5.1"
LEVEL3_FORMAT_CODE = "urn:asip:ci-sis:cr-bio:2023"
SOFTWARE = {"name": "usine-sample", "version": "1.0.0", "registration_id": "REG-SAMPLE-0001"}

#: model metadata codes per document type: class code, section code of a level-3 body
CLASS_CODES = {"11502-2": "10", "11490-0": "10", "34106-7": "10", "60591-5": "11", "18748-4": "10", "60593-1": "13"}
TITLES = {"11502-2": "Compte rendu d'examens de biologie médicale", "11490-0": "Lettre de liaison de sortie",
          "34106-7": "Lettre de liaison de sortie",
          "60591-5": "Volet de synthèse médicale", "18748-4": "Compte rendu d'imagerie médicale",
          "60593-1": "Dispensation médicamenteuse"}


@dataclass(frozen=True, slots=True)
class LabResult:
    """One lab result for a level-3 lab report: LOINC analysis code, label, value and its context."""

    code: str
    label: str
    value: float | str
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    interpretation: str | None = None


DEFAULT_RESULTS = (
    LabResult("2345-7", "Glucose", 1.02, "g/L", 0.70, 1.10, "N"),
    LabResult("718-7", "Hémoglobine", 11.2, "g/dL", 12.0, 16.0, "L"),
    LabResult("2160-0", "Créatinine", 9.4, "mg/L", 5.0, 12.0, "N"),
    LabResult("882-1", "Groupe ABO et Rhésus", "A positif"),
)


def minimal_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF showing some lines of text (Helvetica, WinAnsi), with a correct xref table."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "BT /F1 11 Tf 56 780 Td 14 TL " + " ".join(f"({esc(line)}) '" for line in lines) + " ET"
    stream = text.encode("cp1252", errors="replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{cda.NS}}}{tag}", {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _typed(parent: etree._Element, tag: str, xsi_type: str, **attrs: str) -> etree._Element:
    el = _el(parent, tag, **attrs)
    el.set(f"{{{XSI}}}type", xsi_type)
    return el


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S%z")


def _num(value: float) -> str:
    return f"{value:g}"


def new_document_id() -> str:
    """A fresh ``root^extension`` document id under the sample software's root."""
    return f"{SAMPLE_ROOT}^{uuid.uuid4().hex}"


def build_cda(patient: Mapping[str, Any], author: Mapping[str, Any], custodian: Mapping[str, Any], *,
              type_code: str = "11490-0", level: int | None = None, title: str | None = None,
              body: str = "Patient vu en consultation. Pas d'anomalie.",
              results: Sequence[LabResult] = DEFAULT_RESULTS, effective_time: dt.datetime | None = None,
              document_id: str | None = None, set_id: str | None = None, version: int = 1,
              replaces: str | None = None, confidentiality: str = "N") -> bytes:
    """A CDA R2 ClinicalDocument (UTF-8 bytes) for a fixture patient, practitioner and organisation.

    ``patient`` has ``ins``, ``oid`` and ``registered_traits`` (or ``traits``); ``author`` has
    ``national_id``, ``family_name``, ``given_name``; ``custodian`` has ``finess`` and ``name``.
    ``level`` defaults to 3 for a lab report (11502-2) and 1 otherwise; ids are ``root^extension``.
    """
    level = level or (3 if type_code == "11502-2" else 1)
    when = effective_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    title = title or TITLES.get(type_code, "Document")
    doc_id = document_id or new_document_id()
    root = etree.Element(f"{{{cda.NS}}}ClinicalDocument", nsmap={None: cda.NS, "xsi": XSI})
    _el(root, "realmCode", code="FR")
    _el(root, "typeId", root=cda.TYPE_ID_ROOT, extension=cda.TYPE_ID_EXTENSION)
    _el(root, "templateId", root=cda.HEADER_TEMPLATE_ID)
    doc_type = cda.DOCUMENT_TYPES.get(type_code)
    if doc_type:
        _el(root, "templateId", root=doc_type.template_id)
    _ii(root, "id", doc_id)
    _el(root, "code", code=type_code, codeSystem=cda.LOINC, displayName=doc_type.name if doc_type else title)
    _el(root, "title", title)
    _el(root, "effectiveTime", value=_ts(when))
    _el(root, "confidentialityCode", code=confidentiality, codeSystem=cda.CONFIDENTIALITY_SYSTEM)
    _el(root, "languageCode", code="fr-FR")
    _ii(root, "setId", set_id or doc_id)
    _el(root, "versionNumber", value=str(version))
    _record_target(root, patient)
    _author(root, author, custodian, when)
    org = _el(_el(_el(root, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _el(org, "id", root=cda.FINESS_ROOT, extension=str(custodian["finess"]))
    _el(org, "name", str(custodian.get("name", "")))
    if replaces:
        related = _el(root, "relatedDocument", typeCode="RPLC")
        _ii(_el(related, "parentDocument"), "id", replaces)
    component = _el(root, "component")
    if level == 1:
        text = _el(_el(component, "nonXMLBody"), "text", mediaType="application/pdf", representation="B64")
        text.text = base64.b64encode(minimal_pdf([title, *body.splitlines()])).decode("ascii")
    else:
        _structured_body(component, body, results, when)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _ii(parent: etree._Element, tag: str, value: str) -> etree._Element:
    root_, _, ext = value.partition("^")
    return _el(parent, tag, root=root_, **({"extension": ext} if ext else {}))


def _record_target(root: etree._Element, patient: Mapping[str, Any]) -> None:
    traits = patient.get("registered_traits") or patient["traits"]
    role = _el(_el(root, "recordTarget"), "patientRole")
    _el(role, "id", root=str(patient["oid"]), extension=str(patient["ins"]))
    person = _el(role, "patient")
    name = _el(person, "name")
    for given in str(traits["first_names"]).split():
        _el(name, "given", given)
    _el(name, "family", str(traits["birth_name"]), qualifier="BR")
    _el(person, "administrativeGenderCode", code=str(traits["sex"]), codeSystem=GENDER_SYSTEM)
    _el(person, "birthTime", value=str(traits["birth_date"]).replace("-", ""))
    addr = _el(_el(_el(person, "birthplace"), "place"), "addr")
    _el(addr, "county", str(traits["birth_place_code"]))


def _author(root: etree._Element, author: Mapping[str, Any], org: Mapping[str, Any], when: dt.datetime) -> None:
    node = _el(root, "author")
    _el(node, "time", value=_ts(when))
    assigned = _el(node, "assignedAuthor")
    _el(assigned, "id", root=cda.RPPS_ROOT, extension=str(author["national_id"]))
    if author.get("profession_code"):
        _el(assigned, "code", code=str(author["profession_code"]), codeSystem="1.2.250.1.71.1.2.7",
            displayName=str(author.get("profession", "")))
    name = _el(_el(assigned, "assignedPerson"), "name")
    _el(name, "given", str(author.get("given_name", "")))
    _el(name, "family", str(author.get("family_name", "")))
    represented = _el(assigned, "representedOrganization")
    _el(represented, "id", root=cda.FINESS_ROOT, extension=str(org["finess"]))
    _el(represented, "name", str(org.get("name", "")))


def _structured_body(component: etree._Element, body: str, results: Sequence[LabResult], when: dt.datetime) -> None:
    section = _el(_el(_el(component, "structuredBody"), "component"), "section")
    _el(section, "code", code="18719-5", codeSystem=cda.LOINC, displayName="Chemistry studies")
    _el(section, "title", "Résultats")
    text = _el(section, "text")
    _el(text, "paragraph", body)
    table = _el(text, "table", border="1")
    head = _el(_el(table, "thead"), "tr")
    for label in ("Analyse", "Résultat", "Unité", "Valeurs de référence", "Interprétation"):
        _el(head, "th", label)
    rows = _el(table, "tbody")
    for i, r in enumerate(results, start=1):
        row = _el(rows, "tr")
        _el(row, "td", r.label, ID=f"res-{i}")
        _el(row, "td", _num(r.value) if isinstance(r.value, float | int) else str(r.value))
        _el(row, "td", r.unit or "")
        _el(row, "td", f"{_num(r.low)}–{_num(r.high)}" if r.low is not None and r.high is not None else "")
        _el(row, "td", r.interpretation or "")
    for i, r in enumerate(results, start=1):
        obs = _el(_el(section, "entry", typeCode="DRIV"), "observation", classCode="OBS", moodCode="EVN")
        _el(obs, "code", code=r.code, codeSystem=cda.LOINC, displayName=r.label)
        _el(_el(obs, "text"), "reference", value=f"#res-{i}")
        _el(obs, "statusCode", code="completed")
        _el(obs, "effectiveTime", value=_ts(when))
        if isinstance(r.value, float | int) and r.unit:
            _typed(obs, "value", "PQ", value=_num(r.value), unit=r.unit)
        else:
            _typed(obs, "value", "ST").text = str(r.value)
        if r.interpretation:
            _el(obs, "interpretationCode", code=r.interpretation, codeSystem=cda.INTERPRETATION_SYSTEM)
        if r.low is not None and r.high is not None and r.unit:
            rng = _typed(_el(_el(obs, "referenceRange"), "observationRange"), "value", "IVL_PQ")
            _el(rng, "low", value=_num(r.low), unit=r.unit)
            _el(rng, "high", value=_num(r.high), unit=r.unit)


def submission(document: bytes, *, site_id: str, software: Mapping[str, str] | None = None,
               facility_type: str = "SA01", practice_setting: str = "ETABLISSEMENT",
               **overrides: Any) -> dict[str, Any]:
    """The JSON body of ``POST /dmp/documents`` for a document, with metadata read from its header.

    ``overrides`` replace metadata fields (e.g. ``hash="0" * 40`` to test a mismatch).
    """
    root = parse_xml(document, max_bytes=len(document) + 1, max_depth=256, source="sample")
    _, facts = cda.check_document(root)
    doc_id = root.find(f"{{{cda.NS}}}id")
    unique_id = ""
    if doc_id is not None:
        unique_id = doc_id.get("root", "") + (f"^{doc_id.get('extension')}" if doc_id.get("extension") else "")
    title_el = root.find(f"{{{cda.NS}}}title")
    metadata = {
        "unique_id": unique_id,
        "patient_id": ins_reference(facts.ins, facts.ins_oid) if facts.ins and facts.ins_oid else "",
        "author_id": facts.author_ids[0] if facts.author_ids else "",
        "type_code": facts.type_code or "",
        "class_code": CLASS_CODES.get(facts.type_code or "", "10"),
        "confidentiality": facts.confidentiality or "N",
        "format": cda.PDF_FORMAT_CODE if facts.level == 1 else LEVEL3_FORMAT_CODE,
        "facility_type": facility_type,
        "practice_setting": practice_setting,
        "creation_time": (facts.effective_time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                          if facts.effective_time and facts.effective_time.tzinfo else ""),
        "hash": hashlib.sha1(document).hexdigest(),
        "size": len(document),
        "title": (title_el.text or "") if title_el is not None else "",
    } | overrides
    return {"metadata": metadata, "software": dict(software or SOFTWARE), "site": {"id": site_id},
            "document": base64.b64encode(document).decode("ascii")}


def session_submission(fixtures: Mapping[str, Any], *, patient: int = 0, author: int = 0,
                       type_code: str = "11490-0", site: str | None = None, **build: Any) -> dict[str, Any]:
    """A valid submission for a test session: patient, author and site taken from its fixtures (``site``: another
    care site's FINESS id, its custodian and the submission's site)."""
    pt = fixtures["patients"][patient]
    prac = fixtures["practitioners"][author]
    org = fixtures["organisations"][0] | ({"finess": site} if site else {})
    document = build_cda(pt, prac, org, type_code=type_code, **build)
    return submission(document, site_id=site or fixtures["sites"][0]["site_id"])


def issue_access_token(store: Store, session_id: str, national_id: str, *, ttl: float = 600.0) -> str:
    """An access token for a practitioner of a session, written straight into the store (no IdP)."""
    token = secrets.token_urlsafe(32)
    store.put_token(token, "access", session_id, {"sub": national_id}, ttl=ttl)
    return token
