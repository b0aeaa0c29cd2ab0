"""Discriminating power of the housing pack: every trace mutation fails exactly the requirements it declares (automated
MUSTs and SHOULDs), every housing check fails under some mutation, and every automated MUST and SHOULD of both housing
waves is broken alone by a declared defect (mutations and defective vendors).

The mutations change a copy of the reference run's traces (made once per wave and category); only the checks
reading the changed scenario are evaluated again.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformity.catalog import load_catalog
from conformity.checks.registry import CHECKS
from conformity.defects import MUTATIONS, Mutation, apply, rejudge
from conformity.defects.coverage import (
    automated,
    broken_alone,
    must_automated,
    mutation_case_id,
    should_automated,
    unsettled,
)
from conformity.harness.report import RequirementRow, requirement_rows, summarise
from tests.packs.housing.runs import VENDORS, WAVES
from tests.runs import VendorRun

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("housing")]
CASES = [(m, wave) for _, m in MUTATIONS.items() for wave in m.waves if wave in WAVES]


def case_id(case: tuple[Mutation, str]) -> str:
    m, wave = case
    return mutation_case_id(wave, m.breaks, m.id)


CASE_IDS = [case_id(c) for c in CASES]


def judged(ref: VendorRun, m: Mutation) -> tuple[list[RequirementRow], dict, int | None, set[str]]:
    traces, seq = apply(m, ref.traces)
    verdicts = rejudge(ref.plan.checks, traces, ref.ctx, ref.verdicts, m.scenario, ref.views)
    rows = requirement_rows(ref.plan, verdicts)
    return rows, summarise(rows), seq, {c for c, v in verdicts.items() if v.status == "fail"}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_mutation_fails_exactly_what_it_declares(housing_run: Callable[..., VendorRun], case: tuple[Mutation, str]) -> None:
    m, wave = case
    ref = housing_run("reference", wave, m.category)
    rows, summary, seq, _ = judged(ref, m)
    catalog = load_catalog()
    expected = sorted(r for r in m.breaks if r in must_automated(catalog, wave, m.category))
    should = sorted(r for r in m.breaks if r in should_automated(catalog, wave, m.category))
    assert expected or should, f"{m.id} breaks nothing {wave} {m.category} holds as an automated MUST or SHOULD"
    failing = {r.id: r.findings[:2] for r in rows if r.verdict in ("fail", "error", "not-exercised")}
    got = (sorted(summary["failed_must"]), summary["errored_must"], summary.get("not_exercised_must", []))
    assert got == (expected, [], []), failing
    assert unsettled(rows, "SHOULD") == (should, [], []), failing
    quoted = [f for r in rows if r.id in m.breaks for f in r.findings]
    assert all(f["message"] for f in quoted)
    if seq is not None:
        assert any(f.get("exchange") == seq and m.where in f.get("where", "") for f in quoted), quoted


def test_every_housing_check_fails_under_some_mutation(housing_run: Callable[..., VendorRun]) -> None:
    """No housing check escapes the catalogue: each one fails on at least one realistic mistake."""
    failing: set[str] = set()
    for m, wave in CASES:
        failing |= judged(housing_run("reference", wave, m.category), m)[3]
    assert {c for c in CHECKS if c.startswith("housing.")} - failing == set()


def test_every_automated_must_and_should_of_the_housing_waves_is_broken_alone() -> None:
    catalog = load_catalog()
    alone = broken_alone(catalog, [VENDORS / "defective"])
    total = {(w, r) for w in WAVES for c in catalog.wave(w).categories for r in automated(catalog, w, c)}
    assert sorted(key for key in total if not alone.get(key)) == []
    assert len(total) > 50 and {("2026-W3", "DPE-004"), ("2026-W3", "HOUSINGID-006")} <= total
