"""The pytest plugin: requirement items, -k selection, verdicts as outcomes, ids in JUnit properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.harness.helpers import vendor_manifest

pytest_plugins = ["pytester"]


def test_plugin_runs_selected_requirements(pytester: pytest.Pytester, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("skip-nonce-check")),
        "--usine-wave", "2026-W1", "--usine-category", "GP", "-k", "PRACAUTH-004 or PRACAUTH-003",
        f"--junitxml={junit}", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*PRACAUTH-004*MUST*fail*"])
    cases = etree.parse(str(junit)).findall(".//testcase")
    assert {c.get("name") for c in cases} == {"PRACAUTH-003", "PRACAUTH-004"}
    failed = next(c for c in cases if c.find("failure") is not None)
    props = {p.get("name"): p.get("value") for p in failed.findall("properties/property")}
    assert props["requirement"] == "PRACAUTH-004" and props["checks"] == "oidc.nonce_verified"


def test_document_proofs_are_skipped_with_what_to_provide(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")),
        "--usine-wave", "2026-W1", "--usine-category", "GP", "-k", "SECURITY-003", "-rs", "-q")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*document proof*"])


def test_usine_only_takes_referentials_and_globs_and_names_a_malformed_selector(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1", "--usine-category", "GP",
        "--usine-only", "PRACAUTH-01*,SECURITY-003", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*PRACAUTH-010", "*PRACAUTH-016", "*SECURITY-003"])
    assert "PRACAUTH-009" not in result.stdout.str()
    bad = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1", "--usine-only", "pracauth-1")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*'pracauth-1' is malformed*"])


def test_evidence_the_manifest_names_wrongly_is_a_usage_error_not_a_traceback_per_item(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """An [evidence] entry for a requirement the catalog lacks: once, as a usage error (it was an InputError
    traceback in every item, the run attempted again for each)."""
    manifest = tmp_path / "vendor.toml"
    manifest.write_text(vendor_manifest("reference").read_text(encoding="utf-8").split("[evidence]")[0]
                        + '[evidence]\nFOO-001 = "x.pdf"\n', encoding="utf-8")  # found before any driver starts
    result = pytester.runpytest_subprocess("--usine-vendor", str(manifest), "--usine-wave", "2026-W1",
                                           "--usine-only", "PRACAUTH")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "FOO-001" in result.stderr.str() and "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("seed", ["-5", "x", str(2**62 + 1)])
def test_a_seed_usine_run_refuses_is_refused(pytester: pytest.Pytester, seed: str) -> None:
    result = pytester.runpytest_subprocess("--usine-vendor", str(vendor_manifest("reference")),
                                           "--usine-wave", "2026-W1", "--usine-seed", seed)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--usine-seed" in result.stderr.str()
