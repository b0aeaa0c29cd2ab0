"""Evaluation: verdicts as a pure function of recorded traces and the pinned referentials.

The harness calls this after running scenarios; the agency calls the very same function on the
traces of a bundle to re-derive every verdict without re-running the software.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformity.checks.model import Finding, Verdict, errored
from conformity.checks.registry import CHECKS
from conformity.checks.trace import TraceView


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What a check may know besides the trace: the run's identity and the requirements' parameters."""

    wave: str
    category: str
    software: Mapping[str, str]
    referentials: Mapping[str, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def version(self, referential: str) -> str | None:
        """The pinned version of a referential in this run (None if not pinned)."""
        return self.referentials.get(referential)

    def param(self, requirement: str, name: str, default: Any = None) -> Any:
        """A parameter of a requirement (``parameters`` table in the referential), or ``default``."""
        return self.parameters.get(requirement, {}).get(name, default)


class MissingEvidence(Exception):
    """Raised by check helpers when the trace lacks what the check needs (e.g. the driver crashed)."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def evaluate_check(check_id: str, trace_doc: dict[str, Any] | None, ctx: EvalContext) -> Verdict:
    """One check's verdict on its scenario's trace; never raises."""
    check = CHECKS.get(check_id)
    if trace_doc is None:
        return errored(f"no trace for scenario {check.scenario!r}: the scenario did not run")
    try:
        verdict = check.evaluate(TraceView(trace_doc), ctx)
    except MissingEvidence as exc:
        return Verdict("fail", (exc.finding,))
    except Exception as exc:  # a check bug must not hide the others' verdicts
        return errored(f"check {check_id} raised {type(exc).__name__}: {exc}")
    if not isinstance(verdict, Verdict):
        return errored(f"check {check_id} returned {type(verdict).__name__}, not a Verdict")
    return verdict
