"""What housing checks share: driver steps by name, the exchanges each caused, findings that quote them.

A housing rule needs its scenario's steps to run: a missing step fails the check (``@judged``, the core's
:func:`~conformity.checks.guards.missing_fails`), and any finding fails it (:func:`verdict`, the core's strict
:meth:`~conformity.checks.guards.Findings.verdict`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from conformity.checks.guards import Findings, missing_fails
from conformity.checks.helpers import noted, performed, step_exchanges
from conformity.checks.model import Finding, MissingEvidence, Verdict
from conformity.checks.trace import Exchange, Note, TraceView

#: a housing check fails when a step it is judged on did not run
judged = missing_fails


def step(trace: TraceView, action: str, name: str) -> Note:
    """The driver step ``name`` performing ``action`` (MissingEvidence when the scenario never performed it)."""
    notes = performed(trace, action, name)
    if not notes:
        raise MissingEvidence(Finding(f"the scenario never performed step {name!r} ({action})", scenario=trace.scenario))
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


def answer_is(note: Note, field: str, expected: Any, message: str) -> list[Finding]:
    """The driver's answer to a step must say ``expected`` in ``field`` (``True``, ``False`` and None compared by
    identity): no finding, or the one quoting what it said."""
    got = output(note).get(field)
    wrong = got is not expected if isinstance(expected, bool) or expected is None else got != expected
    return [answered(note, message, where=field, expected=expected, got=got)] if wrong else []


def verdict(findings: list[Finding], success: str) -> Verdict:
    return Findings(findings).verdict(success)


def time_of(e: Exchange) -> dt.datetime:
    return dt.datetime.fromisoformat(str(e.raw.get("time", "")).replace("Z", "+00:00"))
