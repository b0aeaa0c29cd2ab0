"""The proof-of-use window: kept up to date event by event, it equals the proof of the whole set, in any order."""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments.proof import EventKey, best_count, completion_of, earliest_completion

DAY = 86_400 * 1_000_000


def incremental(keys: list[EventKey], n: int, span: int) -> tuple[EventKey | None, int]:
    """What a run does: candidates kept only up to the completion; a bounded window around each new key."""
    candidates: list[EventKey] = []
    completion: EventKey | None = None
    best = 0
    for key in keys:
        if completion is not None and key > completion:
            continue
        bisect.insort(candidates, key)
        window = [k for k in candidates if key[0] - span <= k[0] <= key[0] + span
                  and (completion is None or k <= completion)]
        pos = window.index(key)
        best = max(best, best_count(window, pos, span))
        found = earliest_completion(window, pos, n, span)
        if found is not None and (completion is None or found < completion):
            completion = found
    return completion, best


def max_window(keys: list[EventKey], span: int) -> int:
    keys = sorted(keys)
    return max((sum(1 for k in keys if s[0] <= k[0] <= s[0] + span) for s in keys), default=0)


times = st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=25)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(days=times, n=st.integers(min_value=1, max_value=6), span_days=st.integers(min_value=0, max_value=30),
       order=st.randoms(use_true_random=False))
def test_incremental_completion_is_the_proof_of_the_whole_set(days: list[int], n: int, span_days: int,
                                                              order: object) -> None:
    keys = [(d * DAY // 3, "urn:s", f"e{i:03d}") for i, d in enumerate(days)]
    shuffled = list(keys)
    order.shuffle(shuffled)  # type: ignore[attr-defined]  # the list's shuffle comes from the seeded Random bound to it
    completion, best = incremental(shuffled, n, span_days * DAY)
    assert completion == completion_of(sorted(keys), n, span_days * DAY)
    if completion is None:  # not met: the best window is reported exactly
        assert best == max_window(keys, span_days * DAY) and best < n


def test_window_examples() -> None:
    k = [(0, "s", "a"), (10, "s", "b"), (20, "s", "c"), (100, "s", "d")]
    assert earliest_completion(k, 0, 3, 20) == (20, "s", "c")
    assert earliest_completion(k, 3, 3, 20) is None
    assert best_count(k, 1, 20) == 3 and best_count(k, 3, 20) == 1
    assert completion_of(k, 2, 10) == (10, "s", "b")
