"""Traceability requirement → check: what a check declares is in a wave, and what no check proves says why.

``usine validate`` proves each declared requirement id exists and names its check (tests/packs/test_plugins.py);
``usine coverage --strict`` proves, on top, that each one is in some wave's specification (a check verifying only
requirements no wave asks for is a check no run ever judges), and that a requirement proven by a document or a
manual review gives a reason, not a placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from conformity.catalog import load_catalog
from conformity.catalog.coverage import declaration_problems, placeholder_reason
from conformity.catalog.crosscheck import DeclaredCheck, Registered
from conformity.checks.registry import check
from conformity.defects import vendor_expectations
from conformity.defects.coverage import by_level, defective_vendors_dirs, requirement_key

#: a requirement of PRACAUTH@1.2, a version no wave pins
UNPINNED = '''
[[requirements]]
id = "PRACAUTH-099"
title = "Fixture requirement no wave pins"
statement = "The software MUST do what only a version no wave pins asks."
level = "MUST"
kind = "security"
categories = ["HOSPITAL", "GP"]
proof = { method = "automated", checks = ["oidc.state_verified"] }

[[actions]]'''


def _unpinned_requirement(edit: Callable[[str, str, str], Path]) -> None:
    edit("referentials/health/PRACAUTH/1.2.toml", "\n[[actions]]", UNPINNED)


def test_a_check_must_declare_a_requirement() -> None:
    with pytest.raises(ValueError, match="must declare the requirement ids it verifies"):
        check("fixture.declares_nothing", verifies=[])


def test_a_check_declaring_a_requirement_no_wave_holds_is_a_problem(catalog_copy: Path, edit) -> None:
    _unpinned_requirement(edit)
    catalog = load_catalog(catalog_copy)
    declared = {"oidc.state_verified": DeclaredCheck("health", ("PRACAUTH-003", "PRACAUTH-099")),
                "oidc.nonce_verified": DeclaredCheck("health", ("PRACAUTH-004",))}
    problems = declaration_problems(catalog, declared)
    assert len(problems) == 1, problems
    assert "oidc.state_verified" in problems[0] and "PRACAUTH-099" in problems[0]
    assert "PRACAUTH@1.2" in problems[0] and "no wave pins" in problems[0]
    # a wave of the other pack is not judged on health's checks
    assert declaration_problems(catalog, declared, "2026-W3") == []
    assert len(declaration_problems(catalog, declared, "2026-W1")) == 1


def test_a_check_declaring_an_unknown_requirement_is_a_problem() -> None:
    declared = {"oidc.state_verified": DeclaredCheck("health", ("PRACAUTH-003", "PRACAUTH-777"))}
    problems = declaration_problems(load_catalog(), declared)
    assert len(problems) == 1 and "PRACAUTH-777" in problems[0] and "no referential" in problems[0], problems


def test_the_shipped_checks_declare_only_requirements_waves_hold() -> None:
    from conformity.checks.packs import registered

    declared = registered().checks
    assert len(declared) > 100
    assert declaration_problems(load_catalog(), declared) == []


def test_coverage_strict_fails_on_a_check_declaring_a_requirement_no_wave_holds(
        catalog_copy: Path, edit, usine: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixture registry (the shipped one, one declaration widened) against a catalog copy with a requirement in a
    version no wave pins."""
    import conformity.cli.catalog_cmds as cmds
    from conformity.checks.packs import registered

    _unpinned_requirement(edit)
    assert usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict").exit_code == 0
    full = registered()
    widened = dict(full.checks)
    widened["oidc.state_verified"] = DeclaredCheck("health", ("PRACAUTH-003", "PRACAUTH-099"))
    monkeypatch.setattr(cmds, "registered", lambda: Registered(full.packs, widened))
    lenient = usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1")
    strict = usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict")
    assert lenient.exit_code == 0 and strict.exit_code == 1, strict.output
    assert "check oidc.state_verified declares it verifies PRACAUTH-099" in strict.output
    as_json = usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict", "--format", "json")
    assert as_json.exit_code == 1 and "PRACAUTH-099" in as_json.stderr


@pytest.mark.parametrize("reason", [
    "TODO: say why this one is manual",
    "To be written by the referential owner",
    "TBD (ask the agency)",
    "xxxxxxxxxxxx",
    "Placeholder until review.",
    "Manual review required.",
])
def test_a_placeholder_reason_is_no_reason(reason: str) -> None:
    assert placeholder_reason(reason)


def test_every_shipped_reason_is_a_reason() -> None:
    catalog = load_catalog()
    reasons = [r.proof.evidence for ref in catalog.referentials.values() for r in ref.requirements
               if r.proof.method != "automated"]
    assert len(reasons) > 20
    assert [(e, placeholder_reason(e)) for e in reasons if placeholder_reason(e)] == []


def test_coverage_strict_fails_on_a_manual_requirement_with_a_placeholder_reason(
        catalog_copy: Path, edit, usine: Callable[..., Result]) -> None:
    edit("referentials/health/DIRECTORY/1.0.toml",
         'evidence = "Screenshot of a search for a homonym pair of the sandbox directory; what is displayed is not '
         'visible in the directory traffic."', 'evidence = "TODO: to be written"')
    assert usine("--catalog", catalog_copy, "validate").exit_code == 0  # the schema takes it: 19 characters
    lenient = usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1")
    strict = usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict")
    assert lenient.exit_code == 0 and strict.exit_code == 1, strict.output
    line = next(ln for ln in strict.output.splitlines() if "DIRECTORY-007" in ln)
    assert "no-reason" in line and "TODO" in line, line


def _parametrised_ids() -> list[str]:
    """The ids the tests proving checks fail when they should parametrise: trace mutations and defective vendors."""
    from tests.harness import test_defective_vendors as health_vendors
    from tests.harness import test_discrimination as health_mutations
    from tests.packs.housing import test_defective_vendors as housing_vendors
    from tests.packs.housing import test_discrimination as housing_mutations

    return [*health_mutations.CASE_IDS, *housing_mutations.CASE_IDS, *health_vendors.RUN_IDS,
            *housing_vendors.RUN_IDS]


def test_every_automated_requirement_is_named_by_a_test_id() -> None:
    """``pytest -k PRACAUTH_003`` selects the tests proving PRACAUTH-003's checks fail when they should: every automated
    requirement of every wave is named (``-`` as ``_``) by the id of a mutation or defective-vendor test."""
    catalog = load_catalog()
    automated = {a.id for w in catalog.waves for c in catalog.wave(w).categories
                 for a in catalog.specification(w, c).requirements if a.requirement.proof.method == "automated"}
    ids = _parametrised_ids()
    assert len(automated) > 100 and len(ids) > 100
    assert sorted(r for r in automated if not any(requirement_key(r) in i for i in ids)) == []


def test_defective_vendors_declare_only_automated_musts_and_shoulds_of_their_run() -> None:
    """A defective vendor's ``failed`` and ``not_exercised`` name requirements its run's wave × category holds as
    automated MUSTs or SHOULDs (the level as that wave applies it): another id could never be compared with a run, and
    would count for nothing. ``by_level`` splits them so, as the defective-vendor tests and the coverage read them."""
    catalog = load_catalog()
    expectations = [e for d in defective_vendors_dirs(Path(__file__).resolve().parents[2])
                    for e in vendor_expectations(d)]
    assert len(expectations) > 40
    stray = {(e.vendor, e.wave): by_level(catalog, e.wave, e.category, (*e.failed, *e.not_exercised))[2]
             for e in expectations}
    assert {k: v for k, v in stray.items() if v} == {}
    # the split follows the wave's levels: PRACAUTH-005 is an automated SHOULD of 2026-W1 GP, PRACAUTH-003 a MUST
    assert by_level(catalog, "2026-W1", "GP", ["PRACAUTH-005", "PRACAUTH-003", "PRACAUTH-003", "NOPE-001"]) == \
        (["PRACAUTH-003"], ["PRACAUTH-005"], ["NOPE-001"])


def test_coverage_links_each_requirement_to_its_checks_defects_and_test_ids(usine: Callable[..., Result]) -> None:
    """requirement → checks → the defects proving they fire → the ids of the tests proving it, in JSON and text
    (every automated MUST and SHOULD a wave pins has some in the waves pinning its version); each test
    id one the tests parametrise (the housing pack's defective vendors run on 2026-W3 with
    ``USINE_ALL_WAVES=1`` only)."""
    from conformity.defects.coverage import vendor_case_id
    from tests.packs.housing import test_defective_vendors as housing_vendors

    rows = json.loads(usine("coverage", "--format", "json").output)
    row = next(r for r in rows if r["requirement"] == "PRACAUTH@1.0#PRACAUTH-003")
    assert row["checks"] == ["oidc.state_verified"] and "mutation:state-reused" in row["defects"]
    assert "2026-W1-PRACAUTH_003-state-reused" in row["tests"] and row["test_selector"] == "PRACAUTH_003"
    known = {*_parametrised_ids(), *(vendor_case_id(e.vendor, e.wave, e.failed) for e in housing_vendors.ALL)}
    assert sorted({t for r in rows for t in r["tests"]} - known) == []
    pinned = [r for r in rows if r["method"] == "automated" and r["pinned"]]
    assert len(pinned) > 100 and [r["requirement"] for r in pinned if not r["tests"]] == []
    assert {"PRACAUTH@1.0#PRACAUTH-005", "DPE@1.0#DPE-004"} <= {r["requirement"] for r in pinned if r["level"] == "SHOULD"}
    # a defective vendor's declared SHOULD counts as a mutation's does (DPE-004: a SHOULD in 1.0, a MUST in 1.1)
    should = {r["requirement"]: r for r in pinned if r["requirement"].endswith("#DPE-004")}
    assert should["DPE@1.0#DPE-004"]["level"] == "SHOULD" and should["DPE@1.1#DPE-004"]["level"] == "MUST"
    assert "vendor:housing/hides-warnings" in should["DPE@1.0#DPE-004"]["defects"]
    assert "hides-warnings-2026-W3->DPE_004" in should["DPE@1.0#DPE-004"]["tests"]
    assert "hides-warnings-2027-W4->DPE_004" in should["DPE@1.1#DPE-004"]["tests"]
    assert all(not r["tests"] and not r["test_selector"] for r in rows if r["method"] != "automated")

    lines = usine("coverage", "--wave", "2026-W1").output.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("PRACAUTH@1.0#PRACAUTH-003 "))
    below = "\n".join(lines[at + 1:at + 3])
    assert "mutation:state-reused" in below and "pytest -k PRACAUTH_003" in below, below
    assert "2026-W1-PRACAUTH_003-state-reused" in below and "2027-W2" not in below, below
