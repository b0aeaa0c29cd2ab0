"""sandbox.packs.health.cda: every rule has its code; samples are valid against the rules and the official XSD."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from conformity.xmlsafe import parse_xml
from sandbox.packs.health import cda, samples
from tests.sandbox.cda_cases import (
    HEADER_CASES,
    LEVEL3_CASES,
    METADATA_CASES,
    V3,
    Mutation,
    _el,
    bad_ins_key,
    cda_xsd,
    drop,
    findings_of,
    mutated,
    sample,
    set_attr,
)

# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("type_code", sorted(cda.DOCUMENT_TYPES))
@pytest.mark.parametrize("level", [1, 3])
def test_samples_pass_every_rule(type_code: str, level: int) -> None:
    document, metadata = sample(type_code, level)
    findings, facts = cda.validate(parse_xml(document), metadata, document)
    assert findings == []
    assert facts.level == level and facts.type_code == type_code


@pytest.mark.parametrize("type_code", sorted(cda.DOCUMENT_TYPES))
@pytest.mark.parametrize("level", [1, 3])
def test_samples_valid_against_official_xsd(official_schemas: Path, type_code: str, level: int) -> None:
    schema = cda.load_schema(cda_xsd(official_schemas))
    document, _ = sample(type_code, level, replaces=samples.new_document_id(), version=2)
    assert schema.validate(parse_xml(document)), schema.error_log


@pytest.mark.parametrize(("name", "mutate", "code"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_each_header_rule_has_its_code(name: str, mutate: Mutation, code: str) -> None:
    document, metadata = mutated(mutate)
    assert code in findings_of(document, metadata)


@pytest.mark.parametrize(("name", "mutate", "code"), LEVEL3_CASES, ids=[c[0] for c in LEVEL3_CASES])
def test_each_level3_rule_has_its_code(name: str, mutate: Mutation, code: str) -> None:
    document, metadata = mutated(mutate, type_code="11502-2", level=3)
    assert findings_of(document, metadata) == [code]


@pytest.mark.parametrize(("name", "overrides", "code"), METADATA_CASES, ids=[c[0] for c in METADATA_CASES])
def test_each_metadata_rule_has_its_code(name: str, overrides: dict[str, Any], code: str) -> None:
    document, metadata = sample()
    assert findings_of(document, metadata | overrides) == [code]


def test_type_code_not_allowed_even_when_metadata_agrees() -> None:
    document, metadata = mutated(set_attr("v3:code", "code", "11488-4"))  # a consultation note: in no DOCSHARE
    assert findings_of(document, metadata | {"type_code": "11488-4"}) == ["cda-type-code-not-allowed"]


def test_level3_with_pdf_format_code() -> None:
    document, metadata = sample("11502-2", 3)
    assert findings_of(document, metadata | {"format": cda.PDF_FORMAT_CODE}) == ["metadata-format-mismatch"]


def test_sha256_instead_of_sha1_is_named() -> None:
    document, metadata = sample()
    sha256 = hashlib.sha256(document).hexdigest()
    assert findings_of(document, metadata | {"hash": sha256}) == ["metadata-hash-not-sha1"]


def test_confidentiality_metadata_may_be_a_list_and_creation_time_xds_form() -> None:
    document, metadata = sample()
    when = cda.parse_creation_time(metadata["creation_time"])
    assert when is not None
    assert findings_of(document, metadata | {"confidentiality": ["N", "MASQUE_PS"],
                                             "creation_time": when.strftime("%Y%m%d%H%M%S")}) == []


def test_all_findings_are_returned_not_only_the_first() -> None:
    def many(root: etree._Element) -> None:
        drop("v3:typeId")(root)
        drop("v3:custodian")(root)
        set_attr("v3:confidentialityCode", "code", "X")(root)
        bad_ins_key(root)

    document, metadata = mutated(many, keep_hash=True)
    found = findings_of(document, metadata | {"author_id": "nobody"})
    assert set(found) >= {"cda-type-id-invalid", "cda-custodian-missing", "cda-confidentiality-invalid",
                          "cda-patient-ins-invalid", "metadata-author-id-invalid", "metadata-hash-mismatch",
                          "metadata-size-mismatch"}


def test_findings_carry_locations_and_known_codes() -> None:
    document, metadata = mutated(set_attr("v3:author/v3:assignedAuthor/v3:id", "extension", "1"))
    findings, _ = cda.validate(parse_xml(document), metadata, document)
    assert [f.location for f in findings] == ["/ClinicalDocument/author/assignedAuthor/id"]
    every = [c for _, _, c in HEADER_CASES + LEVEL3_CASES] + [c for _, _, c in METADATA_CASES]
    assert set(every) <= set(cda.CODES)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code) for code in cda.CODES)


def test_xsd_errors_are_reported_with_their_code(official_schemas: Path) -> None:
    schema = cda.load_schema(cda_xsd(official_schemas))

    def unknown_element(root: etree._Element) -> None:
        _el(root, "v3:title").addnext(etree.Element(V3 + "colour"))

    document, metadata = mutated(unknown_element)
    assert findings_of(document, metadata) == []
    findings, _ = cda.validate(parse_xml(document), metadata, document, schema=schema)
    assert cda.codes(findings) == ["cda-xsd-invalid"]
    assert "colour" in findings[0].message and findings[0].location.startswith("/ClinicalDocument")


def test_schema_loading_refuses_remote_parts(tmp_path: Path) -> None:
    xsd = tmp_path / "remote.xsd"
    xsd.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                   '<xs:include schemaLocation="http://127.0.0.1:9/never.xsd"/></xs:schema>')
    with pytest.raises(etree.XMLSchemaParseError):
        cda.load_schema(xsd)


@pytest.mark.parametrize(("value", "ok"), [
    ("20250101120000+0100", True), ("20250101120000.123-0500", True), ("2025", True), ("202501", True),
    ("20250101", True), ("2025010112", True), ("202501011200", True), ("20250101120000", True),
    ("20250230", False), ("20251301", False), ("2025010", False), ("20250101120000+2400", False),
    ("2025-01-01", False), ("", False), ("20250101.5", False),
])
def test_parse_ts(value: str, ok: bool) -> None:
    assert (cda.parse_ts(value) is not None) is ok


def test_document_types_follow_the_referentials(repo_root: Path) -> None:
    """The allowed types and templateIds are those the DOCSHARE summaries list, every version (the model values of
    1.0-2.1 and the real CI-SIS ones of 2.2)."""
    listed: dict[str, set[tuple[str, str]]] = {}
    for path in sorted((repo_root / "referentials" / "health" / "DOCSHARE").glob("*.toml")):
        summary = " ".join(tomllib.loads(path.read_text())["summary"].split())
        listed[path.stem] = set(re.findall(r"([0-9]+-[0-9]) [^;()]+\([A-Z\-]+, (1\.2\.250\.1\.213\.1\.1\.1\.[0-9]+)\)",
                                           summary))
    assert listed, "no DOCSHARE referential found"
    union = set().union(*listed.values())
    assert union == {(t.code, tid) for t in cda.DOCUMENT_TYPES.values() for tid in t.template_ids}
    assert {("11490-0", "1.2.250.1.213.1.1.1.29"), ("11502-2", "1.2.250.1.213.1.1.1.55"),
            ("60591-5", "1.2.250.1.213.1.1.1.51"), ("18748-4", "1.2.250.1.213.1.1.1.45")} <= listed["2.2"]
