"""An events file read once, in batches of whole signed segments, each segment hashed as it is read.

The sidecar's signatures, schema and chain were checked first (``authenticate(read=False)``: a table of
line spans, the signed segments among them left *unread*). This reading is the only one: the bytes of
each unread span are hashed as they are loaded and the span is settled (``authenticate.settle``: proven,
or refused as ``event-segment-mismatch`` / ``event-chain-broken``) before the batch holding its lines is
handed over, so the bytes parsed are exactly the bytes whose hash the signed segment names. A file
that ends inside a segment (truncated, even while the run reads it) refuses that segment and the ones
after it. A batch ends only at the end of a span, after at least ``min_lines`` lines or ``max_bytes`` bytes;
``Batch.settled`` names the spans settled for it.

Spans already proven by a reading of their own (``authenticate(read=True)``) are hashed again, and the run
stops (:class:`FileChanged`) before a batch holding one whose bytes no longer hash to the verified value.

A batch is a block of bytes with the end offset of each of its lines (numpy), so that the columnar
engine takes the lines as an Arrow string array without a Python object per line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conformity.payments.authenticate import FileChanged, FileProof, settle

BLOCK = 16 << 20
MAX_BATCH_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class Batch:
    """Lines ``first``.. of a file: ``data`` holds them with their line ends, ``ends`` each one's end offset."""

    first: int
    data: bytes
    ends: np.ndarray  # int64, exclusive end of each line in data
    settled: tuple[int, ...] = ()  # the unread spans made proven or refused (``authenticate.settle``) for this batch

    @property
    def count(self) -> int:
        return len(self.ends)

    def starts(self) -> np.ndarray:
        out = np.empty(len(self.ends), dtype=np.int64)
        if len(out):
            out[0] = 0
            out[1:] = self.ends[:-1]
        return out


def changed(proof: FileProof, what: str) -> FileChanged:
    return FileChanged(f"the file changed while the run read it: {what}; nothing of those lines is "
                       "committed. Run again on a copy nobody writes to", file=proof.events)


def batches(path: Path, proof: FileProof, min_lines: int, max_bytes: int = MAX_BATCH_BYTES,
            block: int = BLOCK) -> Iterator[Batch]:
    """The file's lines in batches that end at span ends; FileChanged when a proven span's bytes changed."""
    spans = proof.spans
    k = 0  # the span of the next line
    hasher: Any = hashlib.sha256()
    parts: list[bytes] = []
    part_ends: list[np.ndarray] = []
    pending_lines = pending_bytes = 0
    batch_first = 1
    line = 1  # number of the first line of ``data``
    carry = b""
    settled: list[int] = []
    span_lines = 0  # lines of span k read so far

    def cut() -> Batch:
        nonlocal parts, part_ends, pending_lines, pending_bytes, batch_first, settled
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        ends, base = [], 0
        for part, e in zip(parts, part_ends, strict=True):
            ends.append(e + base)
            base += len(part)
        batch = Batch(batch_first, data, np.concatenate(ends) if ends else np.empty(0, dtype=np.int64),
                      tuple(settled))
        batch_first += batch.count
        parts, part_ends, pending_lines, pending_bytes, settled = [], [], 0, 0, []
        return batch

    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(block)
            eof = not chunk
            data = carry + chunk if carry else chunk
            nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10).astype(np.int64) + 1
            if eof and data and (len(nl) == 0 or nl[-1] != len(data)):
                nl = np.append(nl, np.int64(len(data)))  # a last line without its end
            count = len(nl)
            carry = b"" if eof else data[int(nl[-1]) if count else 0:]
            view = memoryview(data)
            pos = 0  # index of the next line of data to place
            while pos < count:
                span = spans[k]
                stop = count if span.last is None else min(count, span.last - line + 1)
                b0 = int(nl[pos - 1]) if pos else 0
                b1 = int(nl[stop - 1])
                if span.reason is None:
                    hasher.update(view[b0:b1])
                span_lines += stop - pos
                complete = span.last is not None and line + stop - 1 == span.last
                if complete and span.unread:  # the bytes parsed are the bytes hashed: proven or refused now
                    span = settle(proof, k, hasher.hexdigest(), span_lines)
                    settled.append(k)
                elif complete and span.reason is None and hasher.hexdigest() != span.sha256:
                    raise changed(proof, f"lines {span.first}-{span.last} no longer hash to the value verified")
                parts.append(data[b0:b1])
                part_ends.append(nl[pos:stop] - b0)
                pending_lines += stop - pos
                pending_bytes += b1 - b0
                pos = stop
                if complete:
                    k += 1
                    hasher = hashlib.sha256()
                    span_lines = 0
                if (complete or span.reason is not None) and (pending_lines >= min_lines or pending_bytes >= max_bytes):
                    yield cut()
            line += count
            if eof:
                break
    span = spans[k]
    if span.unread:  # the file ends inside this span (and before the spans after it): refused, as they are
        settle(proof, k, hasher.hexdigest(), span_lines)
        settled.append(k)
        for rest in range(k + 1, len(spans)):
            if spans[rest].unread:
                settle(proof, rest, "", 0)
                settled.append(rest)
    elif span.reason is None and span.last is not None:
        raise changed(proof, f"it ends at line {line - 1}, inside the verified lines {span.first}-{span.last}")
    if pending_lines:
        yield cut()
