"""Proof of use: ``min_events`` counted events within ``within_days`` of the first of them.

Counted events of an installation are totally ordered by their key (time, source, id). The proof is
the ``n`` consecutive events ending at the EARLIEST event that completes such a window (the
*completion*); it depends only on the set of counted events, never on the order they were read in.
A new event can only create windows that contain it, so the completion is kept up to date from the
events within ``span`` of the new one: a bounded look-up per event, whatever the installation's size.
"""

from __future__ import annotations

from collections.abc import Sequence

EventKey = tuple[int, str, str]  # (time in microseconds, source, id)


def earliest_completion(keys: Sequence[EventKey], pos: int, n: int, span_us: int) -> EventKey | None:
    """Among windows of ``n`` consecutive ``keys`` containing ``keys[pos]``, the earliest last key of one whose
    span is at most ``span_us``; None if there is none."""
    for end in range(max(pos, n - 1), min(pos + n, len(keys))):
        if keys[end][0] - keys[end - n + 1][0] <= span_us:
            return keys[end]
    return None


def best_count(keys: Sequence[EventKey], pos: int, span_us: int) -> int:
    """The most ``keys`` inside one ``span_us``-long window that contains ``keys[pos]``."""
    t = keys[pos][0]
    first = pos
    while first > 0 and t - keys[first - 1][0] <= span_us:
        first -= 1
    best, end = 0, pos
    for start in range(first, pos + 1):
        while end + 1 < len(keys) and keys[end + 1][0] - keys[start][0] <= span_us:
            end += 1
        best = max(best, end - start + 1)
    return best


def completion_of(keys: Sequence[EventKey], n: int, span_us: int) -> EventKey | None:
    """The completion of a whole, sorted set of counted events (reference for tests and checks)."""
    for end in range(n - 1, len(keys)):
        if keys[end][0] - keys[end - n + 1][0] <= span_us:
            return keys[end]
    return None
