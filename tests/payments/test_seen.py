"""The in-memory index of recorded keys (``seen.SeenKeys``): sorted runs of packed words merged geometrically
give, for any sequence of batches, every file holding a key looked up (never fewer: a missed file would count an
event twice), exactly those when hashes differ in their top bits, with O(log n) runs of 8 bytes a key."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments.seen import SEQ_BITS, SeenKeys

# hashes told apart by their top bits (a prefix each), with any low bits
prefix = st.integers(0, 60)
low_bits = st.integers(0, 2**SEQ_BITS - 1)
batches = st.lists(st.lists(st.tuples(prefix, low_bits), max_size=40), max_size=30)


def word(p: int, low: int) -> int:
    return (p << SEQ_BITS) | low


@settings(max_examples=150, deadline=None, derandomize=True)
@given(batches, st.lists(st.tuples(prefix, low_bits), max_size=50))
def test_the_files_found_are_those_holding_each_hash(added: list[list[tuple[int, int]]],
                                                     looked_up: list[tuple[int, int]]) -> None:
    seen = SeenKeys()
    where: dict[int, set[int]] = {}
    for seq, keys in enumerate(added, start=1):
        seen.add(np.array([word(*k) for k in keys], dtype=np.uint64), seq)
        for p, _ in keys:
            where.setdefault(p, set()).add(seq)
        for run in seen.runs:
            assert np.all(run[:-1] <= run[1:])
    assert len(seen) == sum(len(b) for b in added) and seen.nbytes == 8 * len(seen)
    # a hash found names every file holding a hash of its prefix: exactly those
    expected = set().union(*(where.get(p, set()) for p, _ in looked_up))
    assert seen.files(np.array([word(*k) for k in looked_up], dtype=np.uint64)) == expected


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=20), max_size=40), st.integers(2, 6))
def test_seqs_beyond_the_packed_bits_are_still_found(added: list[list[int]], seq_bits: int) -> None:
    """Files more than the word's seq bits can number: a key's file is among the seqs sharing its low bits."""
    seen = SeenKeys(seq_bits=seq_bits)
    where: dict[int, set[int]] = {}
    for seq, hashes in enumerate(added, start=1):
        seen.add(np.array(hashes, dtype=np.uint64), seq)
        for h in hashes:
            where.setdefault(h >> seq_bits, set()).add(seq)  # keys of one hash prefix: one answer
    for p, seqs in where.items():
        found = seen.files(np.array([p << seq_bits], dtype=np.uint64))
        assert seqs <= found  # never short of a file
        assert all(0 <= s <= len(added) for s in found)
        assert all(any((s - t) % 2**seq_bits == 0 for t in seqs) for s in found)  # only aliases of its files


def test_runs_stay_logarithmic_and_large_hashes_keep_their_order() -> None:
    rng = np.random.default_rng(7)
    seen = SeenKeys()
    for seq in range(1, 1025):
        seen.add(rng.integers(0, 2**64, size=10, dtype=np.uint64), seq)
    assert len(seen) == 10_240
    sizes = [len(run) for run in seen.runs]
    assert all(a > 2 * b for a, b in zip(sizes, sizes[1:], strict=False))  # so at most log2(n / 10) + 1 runs
    assert len(sizes) <= 11
    top = np.array([2**64 - 1], dtype=np.uint64)
    seen.add(top, 2000)
    assert seen.files(top) == {2000}


def test_per_key_files_as_loaded_from_the_store() -> None:
    seen: Any = SeenKeys()
    five, three, four = (word(p, 0) for p in (5, 3, 4))
    given_hashes = np.array([five, three, five], dtype=np.uint64)
    seen.add(given_hashes, np.array([1, 2, 3], dtype=np.int32))
    assert given_hashes[0] == five  # the caller's array is not packed in place
    assert seen.files(np.array([five], dtype=np.uint64)) == {1, 3}
    assert seen.files(np.array([four], dtype=np.uint64)) == set()


def test_a_negative_seq_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="never negative"):
        SeenKeys().add(np.array([1], dtype=np.uint64), -1)
