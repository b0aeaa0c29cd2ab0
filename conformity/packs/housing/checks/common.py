"""What housing checks share: driver steps by name, the exchanges each caused, findings that quote them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from conformity.checks.helpers import noted, performed, step_exchanges
from conformity.checks.model import Finding, Verdict, failed, passed
from conformity.checks.trace import Exchange, Note, TraceView


class StepMissing(Exception):
    """The scenario's step a rule is judged on did not run (or its driver failed): the check cannot conclude."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def step(trace: TraceView, action: str, name: str) -> Note:
    """The driver step ``name`` performing ``action`` (StepMissing when the scenario never performed it)."""
    notes = performed(trace, action, name)
    if not notes:
        raise StepMissing(Finding(f"the scenario never performed step {name!r} ({action})", scenario=trace.scenario))
    return notes[-1]


def output(note: Note) -> dict[str, Any]:
    """The driver's answer to a step (empty when it failed, was unsupported or answered garbage)."""
    out = note.data.get("output")
    return out if isinstance(out, dict) else {}


def during(trace: TraceView, note: Note, service: str | None = None) -> list[Exchange]:
    """The exchanges the step caused (with ``service``: only that service's)."""
    return step_exchanges(trace, note, service)


def answered(note: Note, message: str, *, where: str, expected: Any, got: Any) -> Finding:
    return noted(note, message, where=f"output.{where}" if where else "output", expected=expected, got=got)


def verdict(findings: list[Finding], success: str) -> Verdict:
    return failed(*findings) if findings else passed(success)


def judged(evaluate: Any) -> Any:
    """Decorate a check so that a missing step fails it with the finding saying which (instead of raising)."""

    def run(subject: Any, ctx: Any) -> Verdict:
        try:
            result: Verdict = evaluate(subject, ctx)
        except StepMissing as exc:
            return failed(exc.finding)
        return result

    run.__doc__ = evaluate.__doc__
    run.__name__ = evaluate.__name__
    return run


def time_of(e: Exchange) -> dt.datetime:
    return dt.datetime.fromisoformat(str(e.raw.get("time", "")).replace("Z", "+00:00"))
