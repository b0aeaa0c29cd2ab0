"""Shrinking with the software in the loop: the smallest input that still makes the sandbox refuse.

When a scenario's generated input made the sandbox answer a given outcome (e.g. the identity
service refusing traits that are not normalised), Hypothesis searches the *reductions* of that input
(each text field keeps a subset of its characters; Hypothesis shrinks towards fewer), performing
every candidate through the driver. Each attempt and the result are harness notes in the signed
trace (``shrink.attempt``, ``shrink.result``), so a check can cite the smallest failing input and
the exchange that proves it, and the agency sees exactly what was tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformity.checks.trace import TraceView
from conformity.harness.scenario import Shrink

Perform = Callable[[dict[str, Any]], dict[str, Any]]  # performs the action; returns the note data recorded


def refused_steps(trace: TraceView, step: Shrink) -> list[tuple[dict[str, Any], int]]:
    """(input, exchange seq) of each named step whose requests the sandbox answered with ``step.outcome``."""
    notes = [n for n in trace.notes() if n.kind == "driver.perform" and str(n.data.get("name", "")).startswith(step.after)]
    found = []
    for note in notes:
        earlier = [n.seq for n in trace.notes() if n.seq < note.seq]
        for e in trace.exchanges(step.service, after=earlier[-1] if earlier else 0, before=note.seq):
            if e.outcome == step.outcome:
                found.append((dict(note.data["input"]), e.seq))
                break
    return found


def reductions(example: dict[str, Any], fields: tuple[str, ...]) -> Any:
    """Hypothesis strategy over inputs that keep a subset of the characters of each text field."""
    from hypothesis import strategies as st

    def reduced(text: str) -> Any:
        return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
            lambda keep: "".join(c for c, k in zip(text, keep, strict=True) if k))

    parts = {k: reduced(v) if k in fields and isinstance(v, str) else st.just(v) for k, v in example.items()}
    return st.fixed_dictionaries(parts).filter(lambda d: all(d[k] for k in fields if k in d))


def shrink(step: Shrink, trace: TraceView, perform: Perform, refused_now: Callable[[], int | None]) -> dict[str, Any] | None:
    """Search the smallest refused reduction of the first refused input; the ``shrink.result`` note data."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    refused = refused_steps(trace, step)
    if not refused:
        return None
    original, seq = refused[0]
    attempts = 0
    last_refusal: dict[str, int] = {}

    def still_refused(candidate: dict[str, Any]) -> bool:
        nonlocal attempts
        attempts += 1
        perform(candidate)
        exchange = refused_now()
        if exchange is not None:
            last_refusal[repr(sorted(candidate.items()))] = exchange
        return exchange is not None

    try:
        smallest = find(reductions(original, step.fields), still_refused,
                        settings=settings(database=None, max_examples=step.max_attempts, deadline=None,
                                          derandomize=True, phases=[Phase.generate, Phase.shrink],
                                          suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return {"action": step.action, "from": original, "from_exchange": seq, "attempts": attempts,
                "reproduced": False}
    return {"action": step.action, "from": original, "from_exchange": seq, "attempts": attempts, "reproduced": True,
            "smallest": smallest, "exchange": last_refusal.get(repr(sorted(smallest.items())))}
