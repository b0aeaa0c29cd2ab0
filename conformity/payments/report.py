"""The refusal report of a run: every event, installation, label or order not paid, and why (CSV and JSON).

Rows are streamed to scratch files as the run goes (bounded memory) and put in place atomically at
the end: ``refusals.csv`` (one row per refusal) and ``refusals.json``
(``{"format": "usine.refusals/1", ..., "counts": {...}, "refusals": [...]}``). Every cell of the CSV goes
through ``conformity.csvcells`` (a text a spreadsheet would run as a formula gets a ``'`` in front), the rows the
columnar engines write in bulk too; the JSON keeps every text as it is.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.csvcells import Writer, copy_rows, may_hold_formulas
from conformity.files import output_set
from conformity.payments.files import scratch_file

REFUSALS_FORMAT = "usine.refusals/1"
CSV_NAME, JSON_NAME = "refusals.csv", "refusals.json"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One thing not paid: what kind of input, the reason code, where it is, and what it concerns."""

    kind: str  # event | installation | label | order
    reason: str
    detail: str
    file: str = ""
    line: int | None = None
    source: str = ""
    event_id: str = ""
    time: str = ""
    wave: str = ""
    vendor_id: str = ""
    software_id: str = ""
    software_version: str = ""
    site_id: str = ""


COLUMNS = tuple(Refusal.__dataclass_fields__)


class RefusalReport:
    """Collects refusals into scratch files in ``out``; ``finish`` puts the CSV and JSON in place."""

    def __init__(self, out: Path):
        self.out = out
        self.counts: Counter[tuple[str, str]] = Counter()
        self._csv_path = scratch_file(out, CSV_NAME)
        self._jsonl_path = scratch_file(out, JSON_NAME + "l")
        self._csv_fh = open(self._csv_path, "w", encoding="utf-8", newline="")
        self._jsonl_fh = open(self._jsonl_path, "w", encoding="utf-8")
        self._csv = Writer(self._csv_fh, lineterminator="\n")
        self._csv.writerow(COLUMNS)

    def add(self, refusal: Refusal) -> None:
        self.counts[(refusal.kind, refusal.reason)] += 1
        values = [getattr(refusal, c) for c in COLUMNS]
        self._csv.writerow(["" if v is None else v for v in values])
        self._jsonl_fh.write(json.dumps(dict(zip(COLUMNS, values, strict=True)), ensure_ascii=False,
                                        separators=(",", ":")) + "\n")

    def extend(self, csv_rows: Path, jsonl_rows: Path, counts: Iterable[tuple[str, str, int]]) -> None:
        """Rows written in bulk elsewhere (the columnar engine's COPY) in this report's two formats, appended:
        ``csv_rows`` without a header, ``jsonl_rows`` one compact object per line; ``counts`` (kind, reason, n)."""
        for kind, reason, n in counts:
            self.counts[(kind, reason)] += n
        parts = [(csv_rows, self._csv_fh), (jsonl_rows, self._jsonl_fh)]
        if may_hold_formulas(csv_rows):  # a cell to neutralise, perhaps: the rows through this report's writer
            with open(csv_rows, encoding="utf-8", newline="") as text:
                copy_rows(text, self._csv)
            del parts[0]
        for part, fh in parts:  # as the engine wrote them, in bulk
            fh.flush()
            with open(part, "rb") as src:
                shutil.copyfileobj(src, fh.buffer)
            fh.buffer.flush()

    def by_reason(self) -> dict[str, dict[str, int]]:
        """kind → reason → count, sorted."""
        out: dict[str, dict[str, int]] = {}
        for (kind, reason), n in sorted(self.counts.items()):
            out.setdefault(kind, {})[reason] = n
        return out

    def finish(self, header: dict[str, Any]) -> list[Path]:
        """Put ``refusals.csv`` and ``refusals.json`` in place; returns their paths."""
        self._csv_fh.flush()
        os.fsync(self._csv_fh.fileno())
        self._csv_fh.close()
        self._jsonl_fh.close()
        csv_path, json_path = self.out / CSV_NAME, self.out / JSON_NAME
        doc = {"format": REFUSALS_FORMAT, **header, "counts": self.by_reason()}
        head = json.dumps(doc, ensure_ascii=False, indent=1)[:-2]  # drop the closing "\n}" to append the list
        # a pair: both in place once both are written (a full disk on the JSON leaves the previous pair, never the
        # new CSV beside the previous run's JSON)
        with output_set(self.out, (CSV_NAME, JSON_NAME)) as temps:
            os.replace(self._csv_path, temps[CSV_NAME])
            with open(temps[JSON_NAME], "w", encoding="utf-8") as out, \
                    open(self._jsonl_path, encoding="utf-8") as rows:
                out.write(head + ',\n "refusals": [')
                first = True
                for line in rows:
                    out.write(("\n  " if first else ",\n  ") + line.rstrip("\n"))
                    first = False
                out.write("\n ]\n}\n" if not first else "]\n}\n")
        self._jsonl_path.unlink(missing_ok=True)
        return [csv_path, json_path]

    def discard(self) -> None:
        """Remove the scratch files (the run failed)."""
        for fh in (self._csv_fh, self._jsonl_fh):
            if not fh.closed:
                fh.close()
        self._csv_path.unlink(missing_ok=True)
        self._jsonl_path.unlink(missing_ok=True)
