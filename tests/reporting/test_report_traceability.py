"""requirement → check → verdict in a real run's outputs: every verdict row of report.json, junit.xml and
report.html names its requirement and the checks that decided it (those registered as verifying it)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from lxml import etree

from conformity.checks.registry import CHECKS
from conformity.cli import cli
from tests.harness.helpers import vendor_manifest


def test_every_verdict_row_names_its_requirement_and_the_checks_that_decided_it(tmp_path: Path) -> None:
    """A defective vendor (the nonce unchecked) on practitioner authentication and the directory of 2026-W1 GP: passed,
    failed and manual rows alike."""
    result = CliRunner().invoke(cli, ["run", "--wave", "2026-W1", "--vendor", str(vendor_manifest("skip-nonce-check")),
                                      "--category", "GP", "--only", "PRACAUTH", "--only", "DIRECTORY",
                                      "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    rows = report["requirements"]
    evaluated = {c["id"]: c for c in report["checks"]}
    assert {r["verdict"] for r in rows} >= {"pass", "fail", "evidence-required"}, [r["verdict"] for r in rows]
    for r in rows:
        if r["method"] == "automated":
            assert r["checks"], r["id"]
            for cid in r["checks"]:
                assert r["id"] in CHECKS.get(cid).verifies and r["id"] in evaluated[cid]["verifies"], (r["id"], cid)
        else:
            assert r["checks"] == [] and r["verdict"] == "evidence-required", r["id"]
    failed = next(r for r in rows if r["id"] == "PRACAUTH-004")
    assert failed["verdict"] == "fail" and failed["checks"] == ["oidc.nonce_verified"]
    assert evaluated["oidc.nonce_verified"]["status"] == "fail"

    cases = etree.fromstring((tmp_path / "junit.xml").read_bytes()).findall(".//testcase")
    said = {}
    for case in cases:
        facts = dict(line.split(": ", 1) for line in case.findtext("system-out").splitlines()[:7])
        said[facts["requirement"]] = facts["checks"]
        assert case.get("name").startswith(facts["requirement"] + " ")
    assert said == {r["id"]: ",".join(r["checks"]) for r in rows}

    html = etree.HTML((tmp_path / "report.html").read_text())
    for r in rows:
        article = html.find(f".//article[@id='{r['id']}']")
        assert article is not None, r["id"]
        assert [c.text for c in article.findall(".//ul[@class='checks']/li/code")] == r["checks"], r["id"]
