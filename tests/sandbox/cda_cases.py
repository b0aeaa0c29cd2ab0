"""CDA cases shared by the sandbox tests: samples, mutations of a valid document and the rule code each must raise."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from conformity.packs.health.ins import OID_TEST_NIR, ins_reference, nir_key
from conformity.xmlsafe import parse_xml
from sandbox.packs.health import cda, samples
from sandbox.packs.health.fixtures import generate

V3 = f"{{{cda.NS}}}"
FIXTURES = generate(11)
Mutation = Callable[[etree._Element], None]


def cda_xsd(official_schemas: Path) -> Path:
    return official_schemas / "hl7-cda-r2" / "infrastructure" / "cda" / "CDA.xsd"


def sample(type_code: str = "34106-7", level: int | None = None, **build: Any) -> tuple[bytes, dict[str, Any]]:
    """A valid document and its submission metadata."""
    body = samples.session_submission(FIXTURES, type_code=type_code, level=level, **build)
    return base64.b64decode(body["document"]), body["metadata"]


def mutated(mutate: Mutation, *, type_code: str = "34106-7", level: int | None = None,
            keep_hash: bool = False) -> tuple[bytes, dict[str, Any]]:
    """A sample changed by ``mutate``, its metadata kept but hash and size following the new bytes."""
    document, metadata = sample(type_code, level)
    root = parse_xml(document)
    mutate(root)
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if not keep_hash:
        metadata = metadata | {"hash": hashlib.sha1(out).hexdigest(), "size": len(out)}
    return out, metadata


def findings_of(document: bytes, metadata: dict[str, Any], **kw: Any) -> list[str]:
    findings, _ = cda.validate(parse_xml(document), metadata, document, **kw)
    return cda.codes(findings)


# ------------------------------------------------------------------------------------------ mutations

def _el(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path.replace("v3:", V3))
    assert found is not None, path
    return found


def drop(path: str) -> Mutation:
    def go(root: etree._Element) -> None:
        el = _el(root, path)
        el.getparent().remove(el)
    return go


def set_attr(path: str, name: str, value: str) -> Mutation:
    return lambda root: _el(root, path).set(name, value)


def set_text(path: str, value: str) -> Mutation:
    def go(root: etree._Element) -> None:
        _el(root, path).text = value
    return go


def rename_root(root: etree._Element) -> None:
    root.tag = "{urn:example}ClinicalDocument"


def swap_type_template(root: etree._Element) -> None:
    root.findall(V3 + "templateId")[1].set("root", cda.DOCUMENT_TYPES["60591-5"].template_id)


def no_cisis_template(root: etree._Element) -> None:
    for el in root.findall(V3 + "templateId"):
        el.set("root", "2.16.840.1.113883.10.12.1")


def two_record_targets(root: etree._Element) -> None:
    rt = _el(root, "v3:recordTarget")
    rt.addnext(etree.fromstring(etree.tostring(rt)))


def future_time(root: etree._Element) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    _el(root, "v3:effectiveTime").set("value", later.strftime("%Y%m%d%H%M%S+0000"))


def bad_ins_key(root: etree._Element) -> None:
    el = _el(root, "v3:recordTarget/v3:patientRole/v3:id")
    ins = el.get("extension")
    el.set("extension", ins[:13] + f"{(int(ins[13:]) + 1) % 100:02d}")


def drop_authors(root: etree._Element) -> None:
    for el in root.findall(V3 + "author"):
        root.remove(el)


def body_text(value: str) -> Mutation:
    return set_text("v3:component/v3:nonXMLBody/v3:text", value)


#: header and body rules of a level-1 discharge letter: (mutation, expected code)
HEADER_CASES: list[tuple[str, Mutation, str]] = [
    ("root", rename_root, "cda-not-clinical-document"),
    ("typeId", drop("v3:typeId"), "cda-type-id-invalid"),
    ("typeId-extension", set_attr("v3:typeId", "extension", "POCD_HD000041"), "cda-type-id-invalid"),
    ("header-template", drop("v3:templateId"), "cda-template-id-missing"),
    ("type-template", swap_type_template, "cda-template-id-conflict"),
    ("no-cisis-template", no_cisis_template, "cda-template-id-missing"),
    ("id", set_attr("v3:id", "root", "not an oid"), "cda-id-invalid"),
    ("code-missing", drop("v3:code"), "cda-code-missing"),
    ("code-system", set_attr("v3:code", "codeSystem", "2.16.840.1.113883.6.96"), "cda-code-system-invalid"),
    ("effective-time", set_attr("v3:effectiveTime", "value", "2025-01-01"), "cda-effective-time-invalid"),
    ("effective-time-date", set_attr("v3:effectiveTime", "value", "20250231120000+0100"), "cda-effective-time-invalid"),
    ("effective-time-day", set_attr("v3:effectiveTime", "value", "20250101"), "cda-effective-time-imprecise"),
    ("effective-time-no-tz", set_attr("v3:effectiveTime", "value", "20250101120000"), "cda-effective-time-imprecise"),
    ("effective-time-future", future_time, "cda-effective-time-future"),
    ("confidentiality-code", set_attr("v3:confidentialityCode", "code", "X"), "cda-confidentiality-invalid"),
    ("confidentiality-system", set_attr("v3:confidentialityCode", "codeSystem", "1.2.3"),
     "cda-confidentiality-invalid"),
    ("confidentiality-r", set_attr("v3:confidentialityCode", "code", "R"), "cda-confidentiality-not-normal"),
    ("record-targets", two_record_targets, "cda-record-target-invalid"),
    ("ins-oid", set_attr("v3:recordTarget/v3:patientRole/v3:id", "root", "1.2.250.1.999"), "cda-patient-ins-missing"),
    ("ins-key", bad_ins_key, "cda-patient-ins-invalid"),
    ("authors", drop_authors, "cda-author-missing"),
    ("author-root", set_attr("v3:author/v3:assignedAuthor/v3:id", "root", "1.2.250.1.71.4.2.2"),
     "cda-author-id-missing"),
    ("author-id", set_attr("v3:author/v3:assignedAuthor/v3:id", "extension", "12345"), "cda-author-id-invalid"),
    ("custodian", drop("v3:custodian"), "cda-custodian-missing"),
    ("body", drop("v3:component"), "cda-body-missing"),
    ("media-type", set_attr("v3:component/v3:nonXMLBody/v3:text", "mediaType", "text/plain"),
     "cda-body-media-type-invalid"),
    ("not-base64", body_text("%%% not base64 %%%"), "cda-body-not-base64"),
    ("not-pdf", body_text(base64.b64encode(b"hello, not a PDF").decode()), "cda-body-not-pdf"),
]

#: level-3 body rules of a lab report
LEVEL3_CASES: list[tuple[str, Mutation, str]] = [
    ("section-title", drop("v3:component/v3:structuredBody/v3:component/v3:section/v3:title"), "cda-section-invalid"),
    ("value-type", lambda r: r.find(f".//{V3}observation/{V3}value").attrib.pop(f"{{{cda.XSI}}}type"),
     "cda-entry-invalid"),
    ("pq-unit", lambda r: r.find(f".//{V3}observation/{V3}value").attrib.pop("unit"), "cda-entry-invalid"),
    ("interpretation", lambda r: r.find(f".//{V3}interpretationCode").set("codeSystem", "1.2.3"), "cda-entry-invalid"),
    ("obs-code", lambda r: r.find(f".//{V3}observation/{V3}code").attrib.pop("codeSystem"), "cda-entry-invalid"),
]


def other_ins_reference() -> str:
    body = "1850275056123"
    return ins_reference(body + nir_key(body), OID_TEST_NIR)


#: metadata rules: (overrides of the metadata, expected code)
METADATA_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unique-id", {"unique_id": "doc-1"}, "metadata-unique-id-invalid"),
    ("unique-id-long", {"unique_id": "1.2.3^" + "x" * 60}, "metadata-unique-id-invalid"),
    ("type-code", {"type_code": "60591-5"}, "metadata-type-code-mismatch"),
    ("patient-id", {"patient_id": "123"}, "metadata-patient-id-invalid"),
    ("patient-id-other", {"patient_id": other_ins_reference()}, "metadata-patient-id-mismatch"),
    ("author-id", {"author_id": "RPPS-1"}, "metadata-author-id-invalid"),
    ("author-other", {"author_id": "810000000000"}, "metadata-author-id-mismatch"),
    ("confidentiality", {"confidentiality": ["R"]}, "metadata-confidentiality-mismatch"),
    ("creation-time", {"creation_time": "yesterday"}, "metadata-creation-time-invalid"),
    ("creation-time-local", {"creation_time": "2025-01-01T10:00:00+01:00"}, "metadata-creation-time-invalid"),
    ("creation-time-other", {"creation_time": "20200101000000"}, "metadata-creation-time-mismatch"),
    ("format", {"format": "urn:asip:ci-sis:vsm:2023"}, "metadata-format-mismatch"),
    ("hash", {"hash": "0" * 40}, "metadata-hash-mismatch"),
    ("size", {"size": 1}, "metadata-size-mismatch"),
]
