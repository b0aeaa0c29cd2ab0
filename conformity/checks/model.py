"""Verdicts and findings: what a check returns about a recorded trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "error", "not-applicable"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "error", "not-applicable")


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact a verdict rests on, quoting the trace: which exchange, which field, expected vs got."""

    message: str
    exchange: int | None = None
    where: str = ""
    expected: Any = None
    got: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.exchange is not None:
            out["exchange"] = self.exchange
        if self.where:
            out["where"] = self.where
        if self.expected is not None:
            out["expected"] = self.expected
        if self.got is not None:
            out["got"] = self.got
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        return cls(d["message"], d.get("exchange"), d.get("where", ""), d.get("expected"), d.get("got"))


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


def not_applicable(reason: str) -> Verdict:
    return Verdict("not-applicable", (Finding(reason),))


def combine(verdicts: list[Verdict]) -> Verdict:
    """The verdict of a requirement from those of its checks: any fail, else any error, else pass."""
    if not verdicts:
        return Verdict("error", (Finding("no check verdict"),))
    findings = tuple(f for v in verdicts for f in v.findings)
    for status in ("fail", "error"):
        if any(v.status == status for v in verdicts):
            return Verdict(status, tuple(f for v in verdicts if v.status == status for f in v.findings))  # type: ignore[arg-type]
    if all(v.status == "not-applicable" for v in verdicts):
        return Verdict("not-applicable", findings)
    return Verdict("pass", tuple(f for v in verdicts if v.status == "pass" for f in v.findings))
