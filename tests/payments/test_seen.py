"""The in-memory index of recorded keys (``seen.SeenKeys``): sorted runs merged geometrically give, for any
sequence of batches, the same candidate files as one sorted array, with O(log n) runs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments.seen import SeenKeys

batches = st.lists(st.lists(st.integers(0, 60), max_size=40), max_size=30)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(batches, st.lists(st.integers(0, 70), max_size=50))
def test_the_files_found_are_those_holding_each_hash(added: list[list[int]], looked_up: list[int]) -> None:
    seen = SeenKeys()
    where: dict[int, set[int]] = {}
    for seq, hashes in enumerate(added, start=1):
        seen.add(np.array(hashes, dtype=np.uint64), seq)
        for h in hashes:
            where.setdefault(h, set()).add(seq)
        for h_run, s_run in seen.runs:
            assert np.all(h_run[:-1] <= h_run[1:]) and len(h_run) == len(s_run)
    assert len(seen) == sum(len(b) for b in added)
    expected = set().union(*(where.get(h, set()) for h in looked_up))
    assert seen.files(np.array(looked_up, dtype=np.uint64)) == expected


def test_runs_stay_logarithmic_and_large_hashes_keep_their_order() -> None:
    rng = np.random.default_rng(7)
    seen = SeenKeys()
    for seq in range(1, 1025):
        seen.add(rng.integers(0, 2**64, size=10, dtype=np.uint64), seq)
    assert len(seen) == 10_240
    sizes = [len(h) for h, _ in seen.runs]
    assert all(a > 2 * b for a, b in zip(sizes, sizes[1:], strict=False))  # so at most log2(n / 10) + 1 runs
    assert len(sizes) <= 11
    top = np.array([2**64 - 1], dtype=np.uint64)
    seen.add(top, 2000)
    assert seen.files(top) == {2000}


def test_per_key_files_as_loaded_from_the_store() -> None:
    seen: Any = SeenKeys()
    seen.add(np.array([5, 3, 5], dtype=np.uint64), np.array([1, 2, 3], dtype=np.int32))
    assert seen.files(np.array([5], dtype=np.uint64)) == {1, 3}
    assert seen.files(np.array([4], dtype=np.uint64)) == set()
