"""Verdicts and findings: what a check returns about a recorded trace."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Status = Literal["pass", "fail", "error", "not-exercised", "not-applicable"]
#: what each status says about a requirement:
#: ``pass`` the situations the rule is about happened and the software met it in each;
#: ``fail`` the trace proves the software broke it; ``error`` it could not be judged (a driver problem, a service
#: refusal, a check or sandbox problem: the cause is the first finding); ``not-exercised`` none of the situations
#: it is about happened in the run (no vacuous pass: it blocks a label like a failure);
#: ``not-applicable`` the rule does not concern what this software does.
STATUSES: tuple[Status, ...] = ("pass", "fail", "error", "not-exercised", "not-applicable")


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact a verdict rests on, quoting the trace: which exchange, which field, expected vs got."""

    message: str
    exchange: int | None = None
    where: str = ""
    expected: Any = None
    got: Any = None
    #: the requirements this finding proves broken; empty: every requirement the check verifies
    requirements: tuple[str, ...] = ()
    #: the scenario whose trace holds ``exchange`` (set by checks that read every scenario of a run)
    scenario: str = ""

    def concerns(self, requirement: str) -> bool:
        """Whether this finding bears on ``requirement``."""
        return not self.requirements or requirement in self.requirements

    def about(self, *requirements: str) -> Finding:
        """This finding, naming the requirements it proves broken."""
        return replace(self, requirements=tuple(dict.fromkeys(requirements)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.exchange is not None:
            out["exchange"] = self.exchange
        if self.scenario:
            out["scenario"] = self.scenario
        if self.where:
            out["where"] = self.where
        if self.expected is not None:
            out["expected"] = self.expected
        if self.got is not None:
            out["got"] = self.got
        if self.requirements:
            out["requirements"] = list(self.requirements)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        return cls(d["message"], d.get("exchange"), d.get("where", ""), d.get("expected"), d.get("got"),
                   tuple(d.get("requirements", ())), d.get("scenario", ""))


class MissingEvidence(Exception):
    """Raised by check helpers when the trace lacks what the check needs (the step did not run, or gave nothing):
    the check's verdict is then ``not-exercised`` with this finding."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True, slots=True)
class Missing(Finding):
    """A finding that a situation the rule is about did not happen (not a breach): see :func:`judged`."""


def judged(findings: list[Finding], passing: str) -> Verdict:
    """A check's verdict from its findings: any breach fails (on the breaches alone); else, if a situation it needs
    is missing, not-exercised; else pass with ``passing`` (which counts what really happened)."""
    breaches = [f for f in findings if not isinstance(f, Missing)]
    if breaches:
        return Verdict("fail", tuple(breaches))
    if findings:
        return Verdict("not-exercised", tuple(findings))
    return passed(passing)


def about(requirements: tuple[str, ...] | list[str], findings: list[Finding]) -> list[Finding]:
    """``findings``, each naming ``requirements`` as the ones it proves broken."""
    return [f.about(*requirements) for f in findings]


def concerning(finding: dict[str, Any], requirement: str) -> bool:
    """Whether a finding, as JSON, bears on ``requirement`` (no ``requirements`` member: every one)."""
    named = finding.get("requirements")
    return not named or requirement in named


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    findings: tuple[Finding, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "findings": [f.to_json() for f in self.findings]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Verdict:
        return cls(d["status"], tuple(Finding.from_json(f) for f in d.get("findings", ())))


def passed(*findings: Finding | str) -> Verdict:
    return Verdict("pass", tuple(f if isinstance(f, Finding) else Finding(f) for f in findings))


def failed(*findings: Finding | str) -> Verdict:
    if not findings:
        raise ValueError("a failing verdict needs at least one finding")
    return Verdict("fail", tuple(f if isinstance(f, Finding) else Finding(f) for f in findings))


def errored(message: str, **details: Any) -> Verdict:
    return Verdict("error", (Finding(message, got=details or None),))


def not_exercised(*findings: Finding | str) -> Verdict:
    """None of the situations the check's requirements are about happened: the findings say which are missing."""
    if not findings:
        raise ValueError("a not-exercised verdict needs at least one finding saying what was missing")
    return Verdict("not-exercised", tuple(f if isinstance(f, Finding) else Finding(f) for f in findings))


def not_applicable(reason: str) -> Verdict:
    return Verdict("not-applicable", (Finding(reason),))


def for_requirement(verdict: Verdict, requirement: str, check: str = "") -> Verdict:
    """What one check's verdict says about one of the requirements it verifies.

    A failing check fails a requirement only through findings that concern it: a check that verifies
    several requirements and failed on another's findings found nothing against this one.
    """
    if verdict.status != "fail":
        return verdict
    mine = tuple(f for f in verdict.findings if f.concerns(requirement))
    if mine:
        return Verdict("fail", mine)
    blamed = sorted({r for f in verdict.findings for r in f.requirements})
    return Verdict("pass", (Finding(f"check {check or '?'} found nothing against {requirement}; its findings concern "
                                    f"{', '.join(blamed)}"),))


def combine(verdicts: list[Verdict]) -> Verdict:
    """The verdict of a requirement from those of its checks: any fail, else any error, else any not exercised,
    else pass (not applicable when every check says so)."""
    if not verdicts:
        return Verdict("error", (Finding("no check verdict"),))
    findings = tuple(f for v in verdicts for f in v.findings)
    worst: tuple[Status, ...] = ("fail", "error", "not-exercised")
    for status in worst:
        if any(v.status == status for v in verdicts):
            return Verdict(status, tuple(f for v in verdicts if v.status == status for f in v.findings))
    if all(v.status == "not-applicable" for v in verdicts):
        return Verdict("not-applicable", findings)
    return Verdict("pass", tuple(f for v in verdicts if v.status == "pass" for f in v.findings))
