"""Helpers of the housing pack's tests: the vendors, waves and categories, and a run with everything checks need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity import plugins
from conformity.catalog import load_catalog
from conformity.checks.evaluate import EvalContext
from conformity.checks.model import Verdict
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import Plan, make_plan
from conformity.harness.runner import Runner, eval_context
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.vendor import load_vendor

VENDORS = Path(__file__).resolve().parents[3] / "examples" / "vendors" / "housing"
WAVES = ("2026-W3", "2027-W4")
CATEGORIES = ("DIAGNOSTICIAN", "ADVISER", "CONTRACTOR")

plugins.register_all()


@dataclass
class Run:
    """A full run: its report, traces, plan, evaluation context and check verdicts."""

    report: dict[str, Any]
    traces: dict[str, dict[str, Any]]
    plan: Plan
    ctx: EvalContext
    verdicts: dict[str, Verdict]


def manifest(vendor: str) -> Path:
    """``reference`` or the name of a defective vendor."""
    return (
        VENDORS / "reference" / "vendor.toml"
        if vendor == "reference"
        else VENDORS / "defective" / vendor / "vendor.toml"
    )


def run_vendor(access: SandboxAccess, vendor: str, wave: str, category: str) -> Run:
    """One real run of ``vendor`` (reference or a defective name) on a wave and category."""
    v = load_vendor(manifest(vendor))
    plan = make_plan(load_catalog(), wave, category)
    result = run_to_end(Runner(plan, v, 0, access))
    verdicts = {c["id"]: Verdict.from_json(c) for c in result.report["checks"]}
    return Run(result.report, result.traces, plan, eval_context(plan, v.identity()), verdicts)
