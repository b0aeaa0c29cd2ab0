"""A real run of an example vendor with everything the checks need: shared by the health and housing tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.catalog import load_catalog
from conformity.checks.evaluate import EvalContext
from conformity.checks.model import Verdict
from conformity.checks.trace import TraceViews
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import Plan, make_plan
from conformity.harness.runner import Runner, eval_context
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.vendor import load_vendor


@dataclass
class VendorRun:
    """A full run: its report, traces, plan, evaluation context and check verdicts."""

    report: dict[str, Any]
    traces: dict[str, dict[str, Any]]
    plan: Plan
    ctx: EvalContext
    verdicts: dict[str, Verdict]
    #: the views of its traces, kept for every judgement of them (mutations judged again: ``defects.rejudge``)
    views: TraceViews = field(default_factory=TraceViews)


def manifest_of(vendors: Path, name: str) -> Path:
    """The vendor.toml of ``reference`` or of a defective vendor (``<vendors>/defective/<name>``)."""
    return vendors / "reference" / "vendor.toml" if name == "reference" else vendors / "defective" / name / "vendor.toml"


def run_vendor(access: SandboxAccess, manifest: Path, wave: str, category: str) -> VendorRun:
    """One real run (seed 0) of the vendor of ``manifest`` on a wave and category."""
    v = load_vendor(manifest)
    plan = make_plan(load_catalog(), wave, category)
    result = run_to_end(Runner(plan, v, 0, access))
    verdicts = {c["id"]: Verdict.from_json(c) for c in result.report["checks"]}
    return VendorRun(result.report, result.traces, plan, eval_context(plan, v.identity()), verdicts)
