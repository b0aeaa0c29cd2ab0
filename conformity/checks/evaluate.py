"""Evaluation: verdicts as a pure function of recorded traces and the pinned referentials.

The harness calls this after running scenarios; the agency calls the very same function on the
traces of a bundle to re-derive every verdict without re-running the software.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformity.checks.causes import attribute, relevant
from conformity.checks.model import MissingEvidence, Verdict, errored
from conformity.checks.registry import CHECKS
from conformity.checks.trace import RunView, TraceView, TraceViews


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What a check may know besides the trace: the run's identity and the requirements' parameters."""

    wave: str
    category: str
    software: Mapping[str, str]
    referentials: Mapping[str, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the scenarios of the run's plan: a check reading every scenario needs every one's trace
    scenarios: tuple[str, ...] = ()

    def version(self, referential: str) -> str | None:
        """The pinned version of a referential in this run (None if not pinned)."""
        return self.referentials.get(referential)

    def param(self, requirement: str, name: str, default: Any = None) -> Any:
        """A parameter of a requirement (``parameters`` table in the referential), or ``default``."""
        return self.parameters.get(requirement, {}).get(name, default)


__all__ = ["EvalContext", "MissingEvidence", "evaluate_check", "evaluate_checks"]


def _subject(check_id: str, traces: Mapping[str, dict[str, Any]], ctx: EvalContext,
             shared: TraceViews) -> TraceView | RunView | Verdict:
    """What the check reads: its scenario's trace, or several scenarios' (an error verdict when one is missing)."""
    check = CHECKS.get(check_id)
    if not check.scenarios:
        return errored(f"check {check_id} names no scenario")
    missing = [s for s in check.scenarios if s not in traces]
    if missing:
        return errored(f"no trace for scenario {missing[0]!r}: the scenario did not run")
    if not (check.reads_all or check.reads):
        return shared.view(traces[check.scenarios[0]])
    wanted = list(check.scenarios)
    if check.reads_all:
        wanted += [s for s in (ctx.scenarios or tuple(traces)) if s not in wanted]
        missing = [s for s in wanted if s not in traces]
        if missing:
            return errored(f"check {check_id} reads every exchange of the run, but scenario(s) {', '.join(missing)} "
                           "left no trace")
    return RunView({s: traces[s] for s in wanted}, shared)


def evaluate_check(check_id: str, traces: Mapping[str, dict[str, Any]], ctx: EvalContext,
                   shared: TraceViews | None = None) -> Verdict:
    """One check's verdict on the traces of a run (by scenario id), tied to the steps that did not run as planned
    (:mod:`conformity.checks.causes`); never raises. ``shared``: the views of the run's traces, made once for all the
    checks judged on them (the same verdict with or without)."""
    check = CHECKS.get(check_id)
    shared = shared if shared is not None else TraceViews()
    subject = _subject(check_id, traces, ctx, shared)
    if isinstance(subject, Verdict):
        return subject
    read = subject.traces if isinstance(subject, RunView) else ()
    return attribute(_judge(check_id, subject, ctx), relevant(check.scenarios, read, traces, shared))


def _judge(check_id: str, subject: TraceView | RunView, ctx: EvalContext) -> Verdict:
    """What the check itself concludes (an error verdict for a check that raised or returned something else)."""
    check = CHECKS.get(check_id)
    try:
        verdict = check.evaluate(subject, ctx)
    except MissingEvidence as exc:
        return Verdict("not-exercised", (exc.finding,))
    except Exception as exc:  # a check bug must not hide the others' verdicts
        return errored(f"check {check_id} raised {type(exc).__name__}: {exc}")
    if not isinstance(verdict, Verdict):
        return errored(f"check {check_id} returned {type(verdict).__name__}, not a Verdict")
    strangers = sorted({r for f in verdict.findings for r in f.requirements} - set(check.verifies))
    if strangers:
        return errored(f"check {check_id} blames {', '.join(strangers)}, which it does not verify")
    return verdict


def evaluate_checks(check_ids: Iterable[str], traces: Mapping[str, dict[str, Any]],
                    ctx: EvalContext, shared: TraceViews | None = None) -> dict[str, Verdict]:
    """Every check's verdict on the traces of a run (what the harness and the agency both compute; ``shared``: views
    of these traces kept from an earlier judgement)."""
    shared = shared if shared is not None else TraceViews()
    return {cid: evaluate_check(cid, traces, ctx, shared) for cid in check_ids}
