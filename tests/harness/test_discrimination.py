"""Discriminating power: every declared defect fails exactly the requirements it declares, and every automated
MUST and SHOULD requirement of both waves is broken alone by at least one defect.

Trace mutations (:mod:`conformity.packs.health.defects`) change a copy of the reference vendor's full run (2026-W1
and 2027-W2; HOSPITAL, GP and PHARMACY for their own requirements): the checks reading the changed scenario
are evaluated again and the failed MUST requirements must be exactly those the mutation declares that its wave ×
category holds as automated MUSTs, the failed SHOULDs exactly those it holds as automated SHOULDs, with a finding
that quotes what it changed. Defective vendors run for real in ``test_defective_vendors.py``; their expectations
count in the coverage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import conformity.packs.health.defects  # noqa: F401  (registers the health pack's mutations)
from conformity.agency.rederive import as_json
from conformity.catalog import load_catalog
from conformity.checks.evaluate import evaluate_check
from conformity.checks.model import Verdict
from conformity.checks.registry import CHECKS
from conformity.cli import cli
from conformity.defects import MUTATIONS, SAME_RULE, Mutation, apply, proves_alone, rejudge
from conformity.defects.coverage import (
    automated,
    broken_alone,
    defective_vendors_dirs,
    must_automated,
    mutation_case_id,
    should_automated,
    uncovered,
    unsettled,
)
from conformity.harness.report import RequirementRow, requirement_rows, summarise
from tests.helpers import without_mutations_breaking
from tests.runs import VendorRun

ROOT = Path(__file__).resolve().parents[2]
#: with the golden runs, on one worker: the reference runs are made once (``./test`` uses --dist loadgroup)
pytestmark = pytest.mark.xdist_group("reference")
#: the health pack's waves (the housing pack's mutations are proven in tests/packs/housing)
HEALTH_WAVES = ("2026-W1", "2027-W2")
CASES = [(m, wave) for _, m in MUTATIONS.items() for wave in m.waves if wave in HEALTH_WAVES]


def case_id(case: tuple[Mutation, str]) -> str:
    m, wave = case
    return mutation_case_id(wave, m.breaks, m.id)


CASE_IDS = [case_id(c) for c in CASES]


#: (mutation, wave) → the checks' verdicts on the mutated run and the seq its finding must quote: judged once for
#: both tests that read them (on the same worker: the module is in one xdist group)
JUDGED: dict[tuple[str, str], tuple[dict[str, Verdict], int | None]] = {}


def rejudged(ref: VendorRun, m: Mutation, wave: str) -> tuple[dict[str, Verdict], int | None]:
    if (m.id, wave) not in JUDGED:
        traces, seq = apply(m, ref.traces)
        JUDGED[(m.id, wave)] = rejudge(ref.plan.checks, traces, ref.ctx, ref.verdicts, m.scenario, ref.views), seq
    return JUDGED[(m.id, wave)]


def judged(ref: VendorRun, m: Mutation, wave: str) -> tuple[list[RequirementRow], dict[str, Any], int | None]:
    verdicts, seq = rejudged(ref, m, wave)
    rows = requirement_rows(ref.plan, verdicts)
    return rows, summarise(rows), seq


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_mutation_fails_exactly_what_it_declares(reference_run: Callable[[str, str], VendorRun],
                                                 case: tuple[Mutation, str]) -> None:
    m, wave = case
    ref = reference_run(wave, m.category)
    rows, summary, seq = judged(ref, m, wave)
    catalog = load_catalog()
    expected = sorted(r for r in m.breaks if r in must_automated(catalog, wave, m.category))
    should = sorted(r for r in m.breaks if r in should_automated(catalog, wave, m.category))
    assert expected or should, f"{m.id} breaks nothing {wave} {m.category} holds as an automated MUST or SHOULD"
    failing = {r.id: r.findings[:2] for r in rows if r.verdict in ("fail", "error", "not-exercised")}
    assert (sorted(summary["failed_must"]), summary["errored_must"], summary["not_exercised_must"]) == (expected, [], []), \
        failing
    assert unsettled(rows, "SHOULD") == (should, [], []), failing
    quoted = [f for r in rows if r.id in m.breaks for f in r.findings]
    assert all(f["message"] for f in quoted)
    if seq is not None:
        assert any(f.get("exchange") == seq and m.where in f.get("where", "") for f in quoted), quoted


def test_a_failed_should_is_told_apart_from_a_failed_must() -> None:
    """The SHOULD comparison reads what the report shows as failed SHOULDs: automated rows of that level only (a
    document-proven SHOULD, or a MUST, is not one), and, for MUSTs, exactly the summary's keys."""
    def row(rid: str, level: str, verdict: str, method: str = "automated") -> RequirementRow:
        return RequirementRow(rid, f"X@1.0#{rid}", rid, level, "functional", method, ("c",), verdict)

    rows = [row("A-2", "SHOULD", "fail"), row("A-1", "SHOULD", "fail"), row("B-1", "MUST", "fail"),
            row("C-1", "SHOULD", "evidence-required", "document"), row("D-1", "SHOULD", "error"),
            row("E-1", "SHOULD", "not-exercised"), row("F-1", "SHOULD", "pass"), row("G-1", "MUST", "error")]
    assert unsettled(rows, "SHOULD") == (["A-1", "A-2"], ["D-1"], ["E-1"])
    summary = summarise(rows)
    assert unsettled(rows, "MUST") == (summary["failed_must"], summary["errored_must"], summary["not_exercised_must"])


def test_views_kept_from_one_mutation_to_the_next_change_no_verdict(
        reference_run: Callable[[str, str], VendorRun]) -> None:
    """``rejudge`` keeps the unchanged traces' views (and what checks derive from them) from one mutation to the next:
    every sixth mutation (of both waves), judged on views of its own, gives the very same verdicts, findings included."""
    for m, wave in CASES[::6]:
        ref = reference_run(wave, m.category)
        kept = {c: v.to_json() for c, v in rejudged(ref, m, wave)[0].items()}
        traces, _ = apply(m, ref.traces)
        alone = {c: v.to_json() for c, v in rejudge(ref.plan.checks, traces, ref.ctx, ref.verdicts, m.scenario).items()}
        assert kept == alone, m.id


def test_every_automated_must_and_should_requirement_is_broken_alone_by_a_defect() -> None:
    """The coverage of both waves, every category: 100 % of the automated MUSTs and SHOULDs (the declarations are
    proven by the test above and by test_defective_vendors.py)."""
    catalog = load_catalog()
    missing = uncovered(catalog, defective_vendors_dirs(ROOT))
    alone = broken_alone(catalog, defective_vendors_dirs(ROOT))
    total = {(w, r) for w in catalog.waves for c in catalog.wave(w).categories for r in automated(catalog, w, c)}
    should = {(w, r) for w in catalog.waves for c in catalog.wave(w).categories for r in should_automated(catalog, w, c)}
    covered = sum(1 for key in total if alone.get(key))
    print(f"defect coverage: {covered}/{len(total)} automated MUST and SHOULD requirements × wave broken alone "
          f"({100 * covered / len(total):.1f} %)")
    assert missing == {} and covered == len(total)
    assert {("2026-W1", "PRACAUTH-005"), ("2026-W3", "DPE-004")} <= should  # SHOULDs are counted


def test_requirements_stating_one_rule_are_few_and_explained() -> None:
    """A pair of requirements counted as one rule must really share its evidence: the same checks prove both."""
    for pair, why in SAME_RULE.items():
        a, b = sorted(pair)
        checks = {r: {c for c in CHECKS if r in CHECKS.get(c).verifies} for r in (a, b)}
        assert checks[a] == checks[b] and len(why) > 40, (a, b)
    assert proves_alone(["PATIENTID-001", "ETHICS-003"], "ETHICS-003")
    assert not proves_alone(["PATIENTID-001", "SECURITY-006"], "PATIENTID-001")


def test_every_check_fails_under_some_mutation(reference_run: Callable[[str, str], VendorRun]) -> None:
    """No check escapes the catalogue: each one fails on at least one realistic mistake."""
    failing: set[str] = set()
    for m, wave in CASES:
        failing |= {c for c, v in rejudged(reference_run(wave, m.category), m, wave)[0].items() if v.status == "fail"}
    health = {c for c in CHECKS if CHECKS.get(c).evaluate.__module__.startswith("conformity.packs.health.")}
    assert len(health) > 50 and health - failing == set()


def test_a_trace_is_rederived_identically(reference_run: Callable[[str, str], VendorRun]) -> None:
    """The verdicts depend on the traces alone: a JSON round trip (as in a bundle) changes none."""
    ref = reference_run("2027-W2", "HOSPITAL")
    again = json.loads(json.dumps(ref.traces))
    for check_id in ref.plan.checks:
        assert as_json(evaluate_check(check_id, again, ref.ctx).to_json()) == \
            as_json(ref.verdicts[check_id].to_json()), check_id


def test_coverage_strict_fails_on_an_automated_should_no_defect_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without its mutations, PRACAUTH-005 (a SHOULD in 2026-W1, which pins PRACAUTH@1.0) is broken alone by no
    defect there: ``usine coverage --strict`` names it and exits 1, as for a MUST."""
    runner = CliRunner()
    assert runner.invoke(cli, ["coverage", "--wave", "2026-W1", "--strict"]).exit_code == 0
    without_mutations_breaking(monkeypatch, "PRACAUTH-005")
    strict = runner.invoke(cli, ["coverage", "--wave", "2026-W1", "--strict"])
    assert strict.exit_code == 1, strict.output
    assert "PRACAUTH@1.0#PRACAUTH-005: no defect breaks it alone" in strict.output
    assert [ln for ln in strict.output.splitlines() if "no defect breaks it alone" in ln] == \
        ["PRACAUTH@1.0#PRACAUTH-005: no defect breaks it alone, so nothing shows its checks can fail"]
    # 2027-W2 raises it to MUST: it was already counted there
    assert uncovered(load_catalog(), defective_vendors_dirs(ROOT)) == {"2026-W1": ["PRACAUTH-005"], "2027-W2": ["PRACAUTH-005"]}


def test_coverage_strict_reports_requirements_no_defect_breaks() -> None:
    """``usine coverage --strict`` passes on the shipped catalogue; its rows name the defects of each requirement."""
    runner = CliRunner()
    ok = runner.invoke(cli, ["coverage", "--wave", "2027-W2", "--strict"])
    assert ok.exit_code == 0, ok.output
    assert "no defect" not in ok.output
    rows = json.loads(runner.invoke(cli, ["coverage", "--wave", "2027-W2", "--format", "json"]).output)
    row = next(r for r in rows if r["requirement"].endswith("#SECURITY-014"))
    assert "vendor:health/accept-weak-keys" in row["defects"] and any(d.startswith("mutation:") for d in row["defects"])
