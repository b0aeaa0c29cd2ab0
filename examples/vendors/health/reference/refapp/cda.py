"""RefApp's CDA R2 documents (CI-SIS model), built with lxml: level 1 (a PDF body) or level 3 (lab results).

The document types, their LOINC codes and templateIds follow the DOCSHARE referential; the software
numbers its documents under its own OID root. ``patient_id`` writes the INS with the OID the patient
identity service returned (the ``wrong-ins-oid`` defect writes a production OID instead).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from refapp import defects

NS = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ROOT_OID = "1.2.250.1.999.77.1"  # RefApp's own OID root for document ids (model value)
HEADER_TEMPLATE_ID = "1.2.250.1.213.1.1.1.1"
LOINC = "2.16.840.1.113883.6.1"
CONFIDENTIALITY_SYSTEM = "2.16.840.1.113883.5.25"
INTERPRETATION_SYSTEM = "2.16.840.1.113883.5.83"
GENDER_SYSTEM = "2.16.840.1.113883.5.1"
PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"
RPPS_ROOT = "1.2.250.1.71.4.2.1"
FINESS_ROOT = "1.2.250.1.71.4.2.2"
PDF_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"
CR_BIO_FORMAT = "urn:asip:ci-sis:cr-bio:2023"
PRODUCTION_OIDS = {"NIR": "1.2.250.1.213.1.4.8", "NIA": "1.2.250.1.213.1.4.9"}

WRONG_INS_OID = defects.register("wrong-ins-oid", "writes the production NIR/NIA OID for every INS instead of the "
                                                  "OID the patient identity service returned")
WRONG_LOINC = defects.register("wrong-loinc-code", "codes the hospital discharge letter with the other LOINC code "
                                                   "than the one asked (34106-7 for 11490-0, and back)")
MISSING_AUTHOR_ID = defects.register("missing-author-id", "writes the author's name but an unknown (nullFlavor) "
                                                          "assignedAuthor/id instead of the national id")


@dataclass(frozen=True, slots=True)
class DocumentType:
    code: str
    name: str
    template_id: str
    class_code: str


#: The document types RefApp produces, with the content model it follows unless asked for another (document.submit
#: ``template_id``, DOCSHARE 2.2, which uses the real CI-SIS templateIds; DOCSHARE 1.0-2.1 used model ones, listed
#: here, and 34106-7 where 2.2 has 11490-0).
TYPES: dict[str, DocumentType] = {t.code: t for t in (
    DocumentType("11502-2", "CR d'examens biologiques", "1.2.250.1.213.1.1.1.21", "10"),
    DocumentType("11490-0", "Lettre de liaison à la sortie d'un établissement de soins", "1.2.250.1.213.1.1.1.29", "10"),
    DocumentType("34106-7", "Lettre de liaison à la sortie d'un établissement de soins", "1.2.250.1.213.1.1.1.29", "10"),
    DocumentType("60591-5", "Synthèse médicale", "1.2.250.1.213.1.1.1.13", "11"),
    DocumentType("18748-4", "CR d'imagerie médicale", "1.2.250.1.213.1.1.1.30", "10"),
    DocumentType("60593-1", "Dispensation médicamenteuse", "1.2.250.1.213.1.1.1.40", "13"),
)}

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """Text with the characters XML 1.0 cannot carry removed."""
    return _NOT_XML.sub("", value)


def loinc_code(type_code: str) -> str:
    """The LOINC code written for a document type."""
    if defects.active(WRONG_LOINC):
        return {"34106-7": "11490-0", "11490-0": "34106-7"}.get(type_code, type_code)
    return type_code


def patient_oid(ins: str, oid: str) -> str:
    """The OID written next to the INS."""
    if defects.active(WRONG_INS_OID):
        return PRODUCTION_OIDS["NIA" if ins[:1] in "78" else "NIR"]
    return oid


def patient_id(ins: str, oid: str) -> str:
    """The patient id of document-sharing metadata: ``INS^^^&OID&ISO^NH``."""
    return f"{ins}^^^&{patient_oid(ins, oid)}&ISO^NH"


def new_unique_id() -> str:
    """A fresh uniqueId ``root^extension`` under RefApp's root (≤ 64 characters)."""
    return f"{ROOT_OID}^{uuid.uuid4().hex}"


def timestamp(when: dt.datetime) -> str:
    """HL7 TS with seconds and UTC offset."""
    return when.strftime("%Y%m%d%H%M%S%z")


@dataclass
class Content:
    """What a document says and about whom, as the software holds it."""

    type_code: str
    title: str
    body: str
    patient: Mapping[str, Any]  # local record: ins, oid, traits / registered_traits
    author: Mapping[str, Any]  # national_id, given_name, family_name, profession {code,label}, specialty
    custodian: Mapping[str, Any]  # finess, name
    results: Sequence[Mapping[str, Any]] = ()
    template_id: str | None = None  # the content model asked for; None: the type's own (TYPES)
    unique_id: str = field(default_factory=new_unique_id)
    set_id: str | None = None
    version: int = 1
    replaces: str | None = None
    effective: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))

    @property
    def level(self) -> int:
        return 3 if self.type_code == "11502-2" and self.results else 1

    @property
    def format_code(self) -> str:
        return CR_BIO_FORMAT if self.level == 3 else PDF_FORMAT


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{tag}", {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def _ii(parent: etree._Element, tag: str, value: str) -> etree._Element:
    root, _, ext = value.partition("^")
    return _el(parent, tag, root=root, **({"extension": ext} if ext else {}))


def build(content: Content) -> bytes:
    """The ClinicalDocument, UTF-8 bytes with an XML declaration."""
    doc_type = TYPES[content.type_code]
    root = etree.Element(f"{{{NS}}}ClinicalDocument", nsmap={None: NS, "xsi": XSI})
    _el(root, "realmCode", code="FR")
    _el(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _el(root, "templateId", root=HEADER_TEMPLATE_ID)
    _el(root, "templateId", root=content.template_id or doc_type.template_id)
    _ii(root, "id", content.unique_id)
    _el(root, "code", code=loinc_code(content.type_code), codeSystem=LOINC, displayName=doc_type.name)
    _el(root, "title", content.title)
    _el(root, "effectiveTime", value=timestamp(content.effective))
    _el(root, "confidentialityCode", code="N", codeSystem=CONFIDENTIALITY_SYSTEM)
    _el(root, "languageCode", code="fr-FR")
    _ii(root, "setId", content.set_id or content.unique_id)
    _el(root, "versionNumber", value=str(content.version))
    _record_target(root, content.patient)
    _author(root, content)
    org = _el(_el(_el(root, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _el(org, "id", root=FINESS_ROOT, extension=str(content.custodian["finess"]))
    _el(org, "name", str(content.custodian.get("name", "")))
    if content.replaces:
        _ii(_el(_el(root, "relatedDocument", typeCode="RPLC"), "parentDocument"), "id", content.replaces)
    component = _el(root, "component")
    if content.level == 3:
        _lab_body(component, content)
    else:
        text = _el(_el(component, "nonXMLBody"), "text", mediaType="application/pdf", representation="B64")
        text.text = base64.b64encode(pdf([content.title, "", *content.body.splitlines()])).decode("ascii")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _record_target(root: etree._Element, patient: Mapping[str, Any]) -> None:
    traits = patient.get("registered_traits") or patient["traits"]
    role = _el(_el(root, "recordTarget"), "patientRole")
    _el(role, "id", root=patient_oid(patient["ins"], patient["oid"]), extension=str(patient["ins"]))
    person = _el(role, "patient")
    name = _el(person, "name")
    for given in str(traits["first_names"]).split():
        _el(name, "given", given)
    _el(name, "family", str(traits["birth_name"]), qualifier="BR")
    _el(person, "administrativeGenderCode", code=str(traits["sex"]), codeSystem=GENDER_SYSTEM)
    _el(person, "birthTime", value=str(traits["birth_date"]).replace("-", ""))


def _author(root: etree._Element, content: Content) -> None:
    author = content.author
    node = _el(root, "author")
    _el(node, "time", value=timestamp(content.effective))
    assigned = _el(node, "assignedAuthor")
    if defects.active(MISSING_AUTHOR_ID):
        _el(assigned, "id", nullFlavor="UNK")  # the defect: the national id is not written
    else:
        _el(assigned, "id", root=RPPS_ROOT, extension=str(author["national_id"]))
    profession = author.get("profession") or {}
    if profession.get("code"):
        _el(assigned, "code", code=str(profession["code"]), codeSystem=PROFESSION_SYSTEM,
            displayName=str(profession.get("label", "")))
    name = _el(_el(assigned, "assignedPerson"), "name")
    _el(name, "given", str(author.get("given_name", "")))
    _el(name, "family", str(author.get("family_name", "")))
    org = _el(assigned, "representedOrganization")
    _el(org, "id", root=FINESS_ROOT, extension=str(content.custodian["finess"]))
    _el(org, "name", str(content.custodian.get("name", "")))


def _number(value: float) -> str:
    return f"{value:g}"


def _lab_body(component: etree._Element, content: Content) -> None:
    """A level-3 lab report: one section, its narrative table, one observation entry per result."""
    section = _el(_el(_el(component, "structuredBody"), "component"), "section")
    _el(section, "code", code="18719-5", codeSystem=LOINC, displayName="Chemistry studies")
    _el(section, "title", "Résultats")
    text = _el(section, "text")
    _el(text, "paragraph", content.body)
    table = _el(text, "table", border="1")
    head = _el(_el(table, "thead"), "tr")
    for label in ("Analyse", "Résultat", "Unité", "Valeurs de référence", "Interprétation"):
        _el(head, "th", label)
    rows = _el(table, "tbody")
    for i, r in enumerate(content.results, start=1):
        row = _el(rows, "tr")
        value = r["value"]
        _el(row, "td", str(r["label"]), ID=f"res-{i}")
        _el(row, "td", _number(value) if isinstance(value, int | float) else str(value))
        _el(row, "td", str(r.get("unit", "")))
        low, high = r.get("low"), r.get("high")
        _el(row, "td", f"{_number(low)}-{_number(high)}" if low is not None and high is not None else "")
        _el(row, "td", str(r.get("interpretation", "")))
    for i, r in enumerate(content.results, start=1):
        _observation(section, i, r, content.effective)


def _observation(section: etree._Element, index: int, r: Mapping[str, Any], when: dt.datetime) -> None:
    obs = _el(_el(section, "entry", typeCode="DRIV"), "observation", classCode="OBS", moodCode="EVN")
    _el(obs, "code", code=str(r["code"]), codeSystem=LOINC, displayName=str(r["label"]))
    _el(_el(obs, "text"), "reference", value=f"#res-{index}")
    _el(obs, "statusCode", code="completed")
    _el(obs, "effectiveTime", value=timestamp(when))
    value = r["value"]
    if isinstance(value, int | float) and r.get("unit"):
        el = _el(obs, "value", value=_number(value), unit=str(r["unit"]))
        el.set(f"{{{XSI}}}type", "PQ")
    else:
        el = _el(obs, "value", _number(value) if isinstance(value, int | float) else str(value))
        el.set(f"{{{XSI}}}type", "ST")
    if r.get("interpretation"):
        _el(obs, "interpretationCode", code=str(r["interpretation"]), codeSystem=INTERPRETATION_SYSTEM)
    if r.get("low") is not None and r.get("high") is not None and r.get("unit"):
        rng = _el(_el(obs, "referenceRange"), "observationRange")
        val = _el(rng, "value")
        val.set(f"{{{XSI}}}type", "IVL_PQ")
        _el(val, "low", value=_number(r["low"]), unit=str(r["unit"]))
        _el(val, "high", value=_number(r["high"]), unit=str(r["unit"]))


# ---------------------------------------------------------------------------------------------
# PDF: RefApp lays the narrative out in a plain PDF (Helvetica, WinAnsi), several pages when long

LINES_PER_PAGE = 54
WRAP = 95


def _wrap(lines: Sequence[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        line = xml_text(line)
        while len(line) > WRAP:
            out.append(line[:WRAP])
            line = line[WRAP:]
        out.append(line)
    return out


def pdf(lines: Sequence[str]) -> bytes:
    """A PDF 1.4 file showing the lines (characters outside Windows-1252 become '?')."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    wrapped = _wrap(lines) or [""]
    pages = [wrapped[i:i + LINES_PER_PAGE] for i in range(0, len(wrapped), LINES_PER_PAGE)]
    count = len(pages)
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, page in enumerate(pages):
        text = "BT /F1 10 Tf 50 790 Td 14 TL " + " ".join(f"({esc(line)}) '" for line in page) + " ET"
        stream = text.encode("cp1252", errors="replace")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {5 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
