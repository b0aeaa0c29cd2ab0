"""Helpers shared by the harness tests: the example vendors, a reference run and its verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.catalog import load_catalog
from conformity.checks.evaluate import EvalContext, evaluate_checks
from conformity.checks.model import Verdict
from conformity.harness.plan import Plan, make_plan
from conformity.harness.report import requirement_rows, summarise
from conformity.harness.runner import eval_context

VENDORS = Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health"


def vendor_manifest(name: str) -> Path:
    """``reference`` or the name of a defective vendor (examples/vendors/health/defective/<name>)."""
    return VENDORS / "reference" / "vendor.toml" if name == "reference" else VENDORS / "defective" / name / "vendor.toml"


@dataclass
class ReferenceRun:
    """A full run of the reference vendor: its report, traces, plan, evaluation context and check verdicts."""

    report: dict[str, Any]
    traces: dict[str, dict[str, Any]]
    plan: Plan
    ctx: EvalContext
    verdicts: dict[str, Verdict]


def judged_as(hospital: ReferenceRun, wave: str, category: str) -> ReferenceRun:
    """The HOSPITAL run's traces judged with the plan of ``category``."""
    plan = make_plan(load_catalog(), wave, category)
    assert set(plan.scenarios) <= set(hospital.traces), "every category's scenarios are HOSPITAL's"
    traces = {s: hospital.traces[s] for s in plan.scenarios}
    ctx = eval_context(plan, {**hospital.ctx.software, "category": category})
    found = evaluate_checks(plan.checks, traces, ctx)
    rows = requirement_rows(plan, found)
    report = {"requirements": [r.to_json() for r in rows], "summary": summarise(rows),
              "checks": [{"id": c, **v.to_json()} for c, v in found.items()],
              "scenarios": [s for s in hospital.report["scenarios"] if s["id"] in traces]}
    return ReferenceRun(report, traces, plan, ctx, found)


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Requirement id → verdict."""
    return {r["id"]: r["verdict"] for r in report["requirements"]}
