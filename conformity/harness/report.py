"""The run report (``report.json``): per requirement, its verdict, its checks and their findings."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformity import __version__
from conformity.checks.causes import problems_of_run
from conformity.checks.model import Verdict, combine, for_requirement
from conformity.harness.events import CheckEvaluated, ScenarioFinished
from conformity.harness.plan import Plan
from conformity.harness.vendor import Vendor
from conformity.runs import canonical_seed

REPORT_FORMAT = "usine.report/3"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


#: a requirement's verdict in a report: a check status, or ``evidence-required`` (proved by documents or review)
SETTLED = ("pass", "not-applicable")


@dataclass(frozen=True, slots=True)
class RequirementRow:
    """One row of ``report.json``'s ``requirements``: a planned requirement and the verdict its checks give it."""

    id: str
    ref: str
    title: str
    level: str
    kind: str
    method: str
    checks: tuple[str, ...]
    verdict: str
    findings: tuple[dict[str, Any], ...] = ()
    #: what to provide, for a requirement no check proves (verdict ``evidence-required``)
    evidence: str | None = None

    @property
    def must_automated(self) -> bool:
        """A MUST proved by automated checks: it alone decides whether a run passes."""
        return self.level == "MUST" and self.method == "automated"

    @property
    def settled(self) -> bool:
        """Passed, or does not apply."""
        return self.verdict in SETTLED

    @property
    def first_message(self) -> str:
        """The first finding's message ("" when none)."""
        return str(self.findings[0].get("message", "")) if self.findings else ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "ref": self.ref, "title": self.title, "level": self.level,
                               "kind": self.kind, "method": self.method, "checks": list(self.checks),
                               "verdict": self.verdict}
        if self.evidence is not None:
            out["evidence"] = self.evidence
        out["findings"] = [dict(f) for f in self.findings]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RequirementRow:
        return cls(d["id"], d["ref"], d["title"], d["level"], d["kind"], d["method"], tuple(d["checks"]),
                   d["verdict"], tuple(d.get("findings", ())), d.get("evidence"))


@dataclass(frozen=True, slots=True)
class Summary:
    """``report.json``'s ``summary``: the counts and the MUST requirements that block a label."""

    requirements: int
    verdicts: dict[str, int]
    must_automated: int
    must_passed: int
    failed_must: tuple[str, ...]
    errored_must: tuple[str, ...]
    not_exercised_must: tuple[str, ...]
    evidence_required: tuple[str, ...]
    passed: bool

    @classmethod
    def of(cls, rows: Sequence[RequirementRow]) -> Summary:
        must = [r for r in rows if r.must_automated]
        return cls(
            requirements=len(rows),
            verdicts=dict(sorted(Counter(r.verdict for r in rows).items())),
            must_automated=len(must),
            must_passed=sum(r.verdict == "pass" for r in must),
            failed_must=tuple(r.id for r in must if r.verdict == "fail"),
            errored_must=tuple(r.id for r in must if r.verdict == "error"),
            not_exercised_must=tuple(r.id for r in must if r.verdict == "not-exercised"),
            evidence_required=tuple(r.id for r in rows if r.verdict == "evidence-required"),
            passed=all(r.settled for r in must),
        )

    def to_json(self) -> dict[str, Any]:
        return {"requirements": self.requirements, "verdicts": dict(self.verdicts),
                "must_automated": self.must_automated, "must_passed": self.must_passed,
                "failed_must": list(self.failed_must), "errored_must": list(self.errored_must),
                "not_exercised_must": list(self.not_exercised_must),
                "evidence_required": list(self.evidence_required), "passed": self.passed}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Summary:
        return cls(d["requirements"], dict(d["verdicts"]), d["must_automated"], d["must_passed"],
                   tuple(d["failed_must"]), tuple(d["errored_must"]), tuple(d.get("not_exercised_must", ())),
                   tuple(d["evidence_required"]), d["passed"])


def rows_of(report: Mapping[str, Any]) -> list[RequirementRow]:
    """The requirement rows of a report (``report.json`` as read)."""
    return [RequirementRow.from_json(r) for r in report["requirements"]]


def summary_of(report: Mapping[str, Any]) -> Summary:
    """The summary of a report (``report.json`` as read)."""
    return Summary.from_json(report["summary"])


def requirement_rows(plan: Plan, check_verdicts: Mapping[str, Verdict]) -> list[RequirementRow]:
    """One row per planned requirement, its verdict derived from what its checks found about it."""
    rows = []
    for p in plan.requirements:
        r = p.applied.requirement
        verdict: str
        if p.checks:
            v = combine([for_requirement(check_verdicts[c], r.id, c) for c in p.checks])
            verdict, findings, evidence = v.status, tuple(f.to_json() for f in v.findings), None
        else:
            verdict, findings, evidence = "evidence-required", (), r.proof.evidence
        rows.append(RequirementRow(r.id, r.ref, r.title, p.applied.level, r.kind, r.proof.method, tuple(p.checks),
                                   verdict, findings, evidence))
    return rows


def summarise(rows: Sequence[RequirementRow]) -> dict[str, Any]:
    """The summary of these rows, as JSON (``Summary.of`` typed)."""
    return Summary.of(rows).to_json()


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
                 seed_source: str, attempt: int, evidence: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
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
        "seed": canonical_seed(seed),  # above 2**53 - 1 its decimal digits: a JSON number a JavaScript reader rounds
        "run_id": run_id,
        "seed_source": seed_source,
        "attempt": attempt,
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
        "requirements": [r.to_json() for r in rows],
        "evidence": evidence or {},
        "summary": summarise(rows),
    }
