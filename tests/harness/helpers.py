"""Helpers shared by the harness tests: the example vendors, a reference run and its verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformity.catalog import load_catalog
from conformity.checks.evaluate import evaluate_checks
from conformity.harness.plan import make_plan
from conformity.harness.report import requirement_rows, summarise
from conformity.harness.runner import eval_context
from tests.runs import VendorRun, manifest_of

VENDORS = Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health"


def vendor_manifest(name: str) -> Path:
    """``reference`` or the name of a defective vendor (examples/vendors/health/defective/<name>)."""
    return manifest_of(VENDORS, name)


def judged_as(hospital: VendorRun, wave: str, category: str) -> VendorRun:
    """The HOSPITAL run's traces judged with the plan of ``category``."""
    plan = make_plan(load_catalog(), wave, category)
    assert set(plan.scenarios) <= set(hospital.traces), "every category's scenarios are HOSPITAL's"
    traces = {s: hospital.traces[s] for s in plan.scenarios}
    ctx = eval_context(plan, {**hospital.ctx.software, "category": category})
    found = evaluate_checks(plan.checks, traces, ctx, hospital.views)
    rows = requirement_rows(plan, found)
    report = {"requirements": [r.to_json() for r in rows], "summary": summarise(rows),
              "checks": [{"id": c, **v.to_json()} for c, v in found.items()],
              "scenarios": [s for s in hospital.report["scenarios"] if s["id"] in traces]}
    return VendorRun(report, traces, plan, ctx, found, hospital.views)  # the same traces: their views too


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Requirement id → verdict."""
    return {r["id"]: r["verdict"] for r in report["requirements"]}
