"""Golden runs: the reference vendor passes every automated MUST of both waves, every category, deterministically.

One full run per wave (HOSPITAL, whose scenarios include every category's); the other categories are those
traces judged with their own plan (the software is never told its category). Determinism: ``test_determinism``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformity.checks.evaluate import evaluate_check
from conformity.checks.trace import TraceViews
from tests.runs import VendorRun

#: with the discrimination tests, on one worker: the reference runs are made once (``./test`` uses --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reference")]


WAVE_CATEGORIES = [(w, c) for w, cs in (("2026-W1", ("HOSPITAL", "GP", "LAB", "PHARMACY")),
                                         ("2027-W2", ("HOSPITAL", "GP", "LAB", "PHARMACY", "RADIOLOGY"))) for c in cs]


@pytest.mark.parametrize(("wave", "category"), WAVE_CATEGORIES, ids=[f"{w}-{c}" for w, c in WAVE_CATEGORIES])
def test_reference_passes_every_automated_must(reference_run: Callable[[str, str], VendorRun], wave: str,
                                               category: str) -> None:
    ref = reference_run(wave, category)
    report, traces = ref.report, ref.traces
    failed = {r["id"]: r["findings"][:1] for r in report["requirements"]
              if r["level"] == "MUST" and r["method"] == "automated" and r["verdict"] != "pass"}
    assert not failed, failed
    assert report["summary"]["passed"]
    assert set(traces) == {s["id"] for s in report["scenarios"]}
    assert all(not s["driver_failures"] and s["error"] is None for s in report["scenarios"])


def test_views_shared_by_the_checks_of_a_run_change_no_verdict(reference_run: Callable[[str, str], VendorRun]) -> None:
    """The harness and the agency judge every check of a run on views of its traces made once (TraceViews); each
    check judged on views of its own gives the very same verdicts, findings included."""
    ref = reference_run("2027-W2", "HOSPITAL")
    shared = TraceViews()
    together = {c: evaluate_check(c, ref.traces, ref.ctx, shared).to_json() for c in ref.plan.checks}
    apart = {c: evaluate_check(c, ref.traces, ref.ctx, TraceViews()).to_json() for c in ref.plan.checks}
    assert together == apart == {c["id"]: {k: v for k, v in c.items() if k not in ("id", "scenario", "verifies", "duration_ms")}
                                 for c in ref.report["checks"]}
