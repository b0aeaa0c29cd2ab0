"""The health pack's codes are the real ones where it models them, every requirement names the real family it
models, and the change is a new version the later wave pins (wave diff shows it), never an edit of a published one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conformity.catalog.catalog import Catalog
from conformity.catalog.loader import load_catalog
from conformity.cli import cli
from conformity.packs.health.checks.security import GET_SEARCH_INTERFACES
from conformity.packs.health.ins import INS_OIDS, OID_DEMO_NIR

B = "1.2.250.1.213.1.1.1."
#: DOMAIN.md, content referentials: (LOINC, templateId) of what the pack models
REAL = {"DOCSHARE-011": ("11502-2", B + "55"), "DOCSHARE-012": ("11490-0", B + "29"),
        "DOCSHARE-013": ("60591-5", B + "51"), "DOCSHARE-014": ("18748-4", B + "45")}
#: what the published versions 2026-W1 pins said, unchanged
MODEL = {"DOCSHARE-011": ("11502-2", B + "21"), "DOCSHARE-012": ("34106-7", B + "29"),
         "DOCSHARE-013": ("60591-5", B + "13"), "DOCSHARE-014": ("18748-4", B + "30")}


@pytest.fixture(scope="module")
def catalog(repo_root: Path) -> Catalog:
    return load_catalog(repo_root)


def requirements(catalog: Catalog, wave: str) -> dict[str, Any]:
    """Every requirement of the referential versions ``wave`` pins (in any of its categories)."""
    pinned = {(rid, version) for c in catalog.waves[wave].categories.values() for rid, version in c.referentials.items()}
    return {r.id: r for rid, version in pinned for r in catalog.referential(rid, version).requirements}


def test_every_requirement_the_latest_wave_pins_names_the_family_it_models(catalog: Catalog) -> None:
    reqs = requirements(catalog, "2027-W2")
    assert len(reqs) > 100
    missing = sorted(rid for rid, r in reqs.items() if not r.references)
    assert not missing, f"requirements without references: {missing}"
    assert any("INS/va1.53" in ref for ref in reqs["PATIENTID-010"].references)
    assert any("INS/va1.53" in ref for ref in reqs["DOCSHARE-005"].references)
    assert any(ref.startswith("SC.PSC.08") for ref in reqs["SECURITY-004"].references)
    assert all(any("SC.PSC." in ref for ref in r.references) for rid, r in reqs.items() if rid.startswith("PRACAUTH"))


def test_the_latest_wave_uses_the_real_cisis_codes(catalog: Catalog) -> None:
    reqs = requirements(catalog, "2027-W2")
    for rid, (code, template) in REAL.items():
        params = reqs[rid].parameters
        assert (params["type_code"], params["template_id"]) == (code, template), rid
        assert code in reqs[rid].statement and template in reqs[rid].statement, rid
    table = reqs["DOCSHARE-002"].parameters["template_ids"]
    assert {table[code] for code, _ in REAL.values()} == {t for _, t in REAL.values()}
    assert "11490-0" in reqs["DOCSHARE-010"].parameters["allowed_types"]
    assert "34106-7" not in reqs["DOCSHARE-010"].parameters["allowed_types"]
    assert catalog.waves["2027-W2"].funding.proof_of_use("HOSPITAL").document_types == ("11490-0",)


def test_the_published_versions_of_the_first_wave_are_unchanged(catalog: Catalog) -> None:
    reqs = requirements(catalog, "2026-W1")
    for rid, (code, template) in MODEL.items():
        assert (reqs[rid].parameters["type_code"], reqs[rid].parameters["template_id"]) == (code, template), rid
    assert {c.referentials["DOCSHARE"] for c in catalog.waves["2026-W1"].categories.values()
            if "DOCSHARE" in c.referentials} == {"1.0"}
    lab = {r.id: r for r in catalog.referential("DOCSHARE", "2.1").requirements}["DOCSHARE-011"]
    assert lab.parameters["template_id"] == B + "21"  # 2.1 is published: the real code came as 2.2


def test_the_demo_nir_oid_is_named_as_such(catalog: Catalog) -> None:
    assert OID_DEMO_NIR == "1.2.250.1.213.1.4.11" and INS_OIDS[OID_DEMO_NIR] == "demo NIR"
    summary = " ".join(catalog.referential("PATIENTID", "1.1").summary.split())
    assert "1.2.250.1.213.1.4.11 (demo NIR)" in summary and "test NIA" not in summary


def test_the_identification_requirement_points_at_the_operation(catalog: Catalog, repo_root: Path) -> None:
    """PATIENTID-012 names the header and the operation; the OpenAPI describes that header on that operation."""
    statement = requirements(catalog, "2027-W2")["PATIENTID-012"].statement
    assert "User-Agent" in statement and "POST /s/{session_id}/insi/lookup" in statement and "insi_lookup" in statement
    doc = json.loads((repo_root / "sandbox" / "openapi.json").read_text(encoding="utf-8"))
    operation = doc["paths"]["/s/{session_id}/insi/lookup"]["post"]
    assert operation["operationId"] == "insi_lookup"
    assert [p["name"] for p in operation["parameters"] if p["in"] == "header"] == ["User-Agent"]


def test_the_url_exception_points_at_the_operations(catalog: Catalog, repo_root: Path) -> None:
    """SECURITY-006's exception ("search parameters the service's interface defines for a GET") names the operations,
    and they are exactly the GETs the check lets personal data through (GET_SEARCH_INTERFACES), no more, no less."""
    statement = requirements(catalog, "2027-W2")["SECURITY-006"].statement
    doc = json.loads((repo_root / "sandbox" / "openapi.json").read_text(encoding="utf-8"))
    allowed = {(operation["operationId"], path) for path, operations in doc["paths"].items()
               for method, operation in operations.items() if method == "get" and path.startswith("/s/{session_id}/")
               for service, prefix in (a.split(":", 1) for a in GET_SEARCH_INTERFACES)
               if path.startswith(f"/s/{{session_id}}/{service}{prefix}")}
    assert {path.rsplit("/", 1)[1] for _, path in allowed} >= {"practitioners", "addresses", "documents", "authorize"}
    for operation_id, path in allowed:
        assert operation_id in statement and (path in statement or f"/{path.rsplit('/', 1)[1]}" in statement), path
    ids = {o.get("operationId") for operations in doc["paths"].values() for o in operations.values()}
    named = {w.strip("(),.:") for w in statement.split()} & ids
    assert named == {operation_id for operation_id, _ in allowed}, named ^ {o for o, _ in allowed}


def test_wave_diff_shows_the_new_codes_and_references() -> None:
    result = CliRunner().invoke(cli, ["wave", "diff", "2026-W1", "2027-W2", "-c", "HOSPITAL", "--format", "json"])
    assert result.exit_code == 0, result.output
    [category] = json.loads(result.output)["categories"]
    changed = {c["id"]: {f["field"]: f for f in c["fields"]} for c in category["changed"]}
    assert "11490-0" in changed["DOCSHARE-012"]["statement"]["to"]
    assert '"type_code": "11490-0"' in changed["DOCSHARE-012"]["parameters"]["to"]
    assert '"type_code": "34106-7"' in changed["DOCSHARE-012"]["parameters"]["from"]
    assert B + "55" in changed["DOCSHARE-011"]["parameters"]["to"]
    assert "INS/va1.53" in changed["PATIENTID-010"]["references"]["to"]
    assert {"referential": "DOCSHARE", "from": "1.0", "to": "2.2"} in category["pinned"]
