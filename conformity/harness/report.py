"""The run report (``report.json``): per requirement, its verdict, its checks and their findings."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

from conformity import __version__
from conformity.checks.causes import problems_of_run
from conformity.checks.model import Verdict, combine, for_requirement
from conformity.harness.events import CheckEvaluated, ScenarioFinished
from conformity.harness.plan import Plan
from conformity.harness.vendor import Vendor

REPORT_FORMAT = "usine.report/3"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def requirement_rows(plan: Plan, check_verdicts: dict[str, Verdict]) -> list[dict[str, Any]]:
    """One row per planned requirement, its verdict derived from what its checks found about it."""
    rows = []
    for p in plan.requirements:
        r = p.applied.requirement
        row: dict[str, Any] = {"id": r.id, "ref": r.ref, "title": r.title, "level": p.applied.level, "kind": r.kind,
                               "method": r.proof.method, "checks": list(p.checks)}
        if p.checks:
            v = combine([for_requirement(check_verdicts[c], r.id, c) for c in p.checks])
            row["verdict"] = v.status
            row["findings"] = [f.to_json() for f in v.findings]
        else:
            row["verdict"] = "evidence-required"
            row["evidence"] = r.proof.evidence
            row["findings"] = []
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    must = [r for r in rows if r["level"] == "MUST" and r["method"] == "automated"]
    counts = Counter(r["verdict"] for r in rows)
    return {
        "requirements": len(rows),
        "verdicts": dict(sorted(counts.items())),
        "must_automated": len(must),
        "must_passed": sum(r["verdict"] == "pass" for r in must),
        "failed_must": [r["id"] for r in must if r["verdict"] == "fail"],
        "errored_must": [r["id"] for r in must if r["verdict"] == "error"],
        "not_exercised_must": [r["id"] for r in must if r["verdict"] == "not-exercised"],
        "evidence_required": [r["id"] for r in rows if r["verdict"] == "evidence-required"],
        "passed": all(r["verdict"] in ("pass", "not-applicable") for r in must),
    }


def run_problems(scenarios: list[ScenarioFinished], traces: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What did not run as planned, scenario by scenario: a scenario the sandbox could not run, then every step
    problem its trace shows (the driver's, an unsupported action, a service's refusal) — the top of every report."""
    out: list[dict[str, Any]] = []
    for s in scenarios:
        if s.trace is None:
            out.append({"scenario": s.scenario, "step": "", "action": "", "kind": "sandbox",
                        "message": s.error or "the scenario left no trace"})
    return out + [p.to_json() for p in problems_of_run(traces)]


def build_report(plan: Plan, vendor: Vendor, seed: int, scenarios: list[ScenarioFinished],
                 checks: list[CheckEvaluated], *, started: float, sandbox_url: str, run_id: str,
                 evidence: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    verdicts = {c.check: c.verdict for c in checks}
    rows = requirement_rows(plan, verdicts)
    traces = {s.scenario: s.trace for s in scenarios if s.trace is not None}
    from conformity.checks.registry import CHECKS

    return {
        "format": REPORT_FORMAT,
        "harness": {"name": "usine", "version": __version__},
        "vendor": vendor.identity(),
        "wave": plan.wave,
        "category": plan.category,
        "seed": seed,
        "run_id": run_id,
        "referentials": plan.referential_versions(),
        "started": _iso(started),
        "finished": _iso(time.time()),
        "duration_s": round(time.time() - started, 3),
        "sandbox": {"url": sandbox_url},
        "scenarios": [{"id": s.scenario, "session_id": s.session_id, "trace": f"traces/{s.scenario}.json" if s.trace else None,
                       "duration_s": s.duration_s, "driver_failures": list(s.driver_failures), "error": s.error}
                      for s in scenarios],
        "checks": [{"id": c.check, "scenario": c.scenario, "verifies": list(CHECKS.get(c.check).verifies),
                    "duration_ms": c.duration_ms, **c.verdict.to_json()} for c in checks],
        "problems": run_problems(scenarios, traces),
        "requirements": rows,
        "evidence": evidence or {},
        "summary": summarise(rows),
    }
