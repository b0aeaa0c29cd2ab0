"""The keys of the events a ledger recorded, in memory: which store files may hold a given (source, id).

Each key is a 64-bit hash (DuckDB's ``hash(source, id)``) with the number (seq) of the store file its row
is in: 12 bytes per event. A hash names candidate files only; the caller looks the key up exactly in them.

The pairs are kept as sorted runs, merged geometrically (a run is merged into the one before it while
that one is at most twice its size), so the runs are O(log n) and a batch of b keys costs O(b log n)
amortised to add and one binary search per run to look up, whatever the number of events already
recorded: the cost per event does not grow with the store (one sorted array would copy all n entries
for every batch). A merge writes the merged run in place of the two (peak: the two runs and the merged one).
"""

from __future__ import annotations

import numpy as np


class SeenKeys:
    """Sorted runs of (key hash, store file seq)."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(h) for h, _ in self.runs)

    def add(self, hashes: np.ndarray, seqs: np.ndarray | int) -> None:
        """Remember keys (their hashes) as held by the store file ``seqs`` (one per key, or one for all)."""
        if not len(hashes):
            return
        h = np.asarray(hashes).astype(np.uint64, copy=False)
        s = np.broadcast_to(np.asarray(seqs, dtype=np.int32), h.shape)
        order = np.argsort(h, kind="stable")
        self.runs.append((h[order], s[order]))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            later = self.runs.pop()
            earlier = self.runs.pop()
            self.runs.append(_merge(earlier, later))

    def files(self, hashes: np.ndarray) -> set[int]:
        """The seqs of the store files holding a key with one of these hashes (a superset of the exact answer)."""
        found: set[int] = set()
        if not len(hashes):
            return found
        # sorted, the searches walk each run forward (about 7x less time than in arrival order at 10 M keys);
        # the upper bound only for the hashes found
        hashes = np.sort(np.asarray(hashes).astype(np.uint64, copy=False))
        for h, s in self.runs:
            left = np.searchsorted(h, hashes, side="left")
            hit = left < len(h)
            hit[hit] = h[left[hit]] == hashes[hit]
            if not hit.any():
                continue
            left = left[hit]
            n = np.searchsorted(h, hashes[hit], side="right") - left
            # every entry of the ranges found, without a Python step per key
            starts = np.repeat(left - np.cumsum(n) + n, n)
            found.update(int(x) for x in np.unique(s[starts + np.arange(int(n.sum()))]))
        return found


def _merge(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One sorted run of two (equal hashes keep the order a then b)."""
    ah, as_ = a
    bh, bs = b
    at = np.searchsorted(ah, bh, side="right") + np.arange(len(bh))  # where each entry of b lands
    h = np.empty(len(ah) + len(bh), dtype=np.uint64)
    s = np.empty(len(h), dtype=np.int32)
    from_a = np.ones(len(h), dtype=bool)
    from_a[at] = False
    h[at], s[at] = bh, bs
    h[from_a], s[from_a] = ah, as_
    return h, s
