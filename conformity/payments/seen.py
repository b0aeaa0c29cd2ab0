"""The keys of the events a ledger recorded, in memory: which store files may hold a given (source, id).

Each key is one unsigned 64-bit word, 8 bytes per event: the top 44 bits of its hash (DuckDB's
``hash(source, id)``) and the low 20 bits of the number (seq) of the store file its row is in. A word names
candidate files only — keys sharing a hash prefix (about one lookup in 1.7·10¹³ per key held), and files whose seqs
agree in their low 20 bits (a store of more than 1,048,575 files) —; the caller looks the key up exactly in them,
so the answer is a superset of the exact one, never short of it.

The words are kept as sorted runs, merged geometrically (a run is merged into the one before it while that one
is at most twice its size), so the runs are O(log n) and a batch of b keys costs O(b log n) amortised to add and
one binary search per run to look up, whatever the number of events already recorded: the cost per event does
not grow with the store (one sorted array would copy all n entries for every batch). A merge is NumPy's stable
sort of the two runs put end to end (a timsort: it finds the two runs and merges them in linear time; peak: the
two runs, the merged one and half of the smaller).
"""

from __future__ import annotations

import numpy as np

#: the bits of a word that hold the store file's seq (the rest: the top of the key's hash)
SEQ_BITS = 20


class SeenKeys:
    """Sorted runs of packed (key hash prefix, store file seq) words."""

    def __init__(self, seq_bits: int = SEQ_BITS) -> None:
        self.seq_bits = seq_bits
        self.seq_mask = np.uint64((1 << seq_bits) - 1)
        self.hash_mask = ~self.seq_mask
        self.runs: list[np.ndarray] = []
        self.max_seq = 0

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs)

    def add(self, hashes: np.ndarray, seqs: np.ndarray | int) -> None:
        """Remember keys (their hashes) as held by the store file ``seqs`` (one per key, or one for all)."""
        if not len(hashes):
            return
        s = np.asarray(seqs, dtype=np.int64)
        if s.size and int(s.min()) < 0:
            raise ValueError("a store file's seq is never negative")
        self.max_seq = max(self.max_seq, int(s.max()))
        words = np.asarray(hashes).astype(np.uint64)  # a copy: the caller's array is left as it was
        words &= self.hash_mask
        words |= s.astype(np.uint64) & self.seq_mask
        words.sort()
        self.runs.append(words)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            later = self.runs.pop()
            merged = np.concatenate((self.runs.pop(), later))
            del later
            merged.sort(kind="stable")
            self.runs.append(merged)

    def files(self, hashes: np.ndarray) -> set[int]:
        """The seqs of the store files holding a key with one of these hashes (a superset of the exact answer)."""
        if not len(hashes):
            return set()
        # sorted, the searches walk each run forward (about 7x less time than in arrival order at 10 M keys);
        # the upper bound only for the prefixes found
        prefixes = np.unique(np.asarray(hashes).astype(np.uint64) & self.hash_mask)
        lows: set[int] = set()
        for run in self.runs:
            left = np.searchsorted(run, prefixes, side="left")
            hit = left < len(run)
            hit[hit] = (run[left[hit]] & self.hash_mask) == prefixes[hit]
            if not hit.any():
                continue
            left = left[hit]
            n = np.searchsorted(run, prefixes[hit] | self.seq_mask, side="right") - left
            # every entry of the ranges found, without a Python step per key
            starts = np.repeat(left - np.cumsum(n) + n, n)
            lows.update(int(x) for x in np.unique(run[starts + np.arange(int(n.sum()))] & self.seq_mask))
        # the seqs a word's low bits stand for: every file's seq up to the largest added with those bits
        step = 1 << self.seq_bits
        return {low + k * step for low in lows for k in range((self.max_seq - low) // step + 1)}
