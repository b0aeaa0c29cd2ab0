"""The refusal report's CSV: its rows written one by one and the rows the columnar engines write in bulk."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conformity.payments.report import Refusal, RefusalReport


def test_refusal_csv_cells_never_start_a_formula_whichever_way_rows_come(tmp_path: Path) -> None:
    report = RefusalReport(tmp_path)
    report.add(Refusal("event", "malformed", "=1+1", file="e.jsonl", line=3, source="@source", event_id="-id"))
    bulk = tmp_path / "bulk.csv"  # as DuckDB's COPY writes them: no header, LF, NULL as nothing
    bulk.write_bytes(b'event,no-label,"no label, =x",e.jsonl,4,"=HYPERLINK(""http://x"")",+id,,,,,,\n'
                     b"event,no-label,,e.jsonl,5,urn:ok,id5,,,,,,\n")
    plain = tmp_path / "plain.csv"  # nothing to neutralise: copied as it is
    plain.write_bytes(b"event,no-label,line 6 has no label,e.jsonl,6,urn:ok,id-6,,,,,,\n")
    parts = tmp_path / "bulk.jsonl"
    parts.write_text(json.dumps({"kind": "event"}) + "\n", encoding="utf-8")
    report.extend(bulk, parts, [("event", "no-label", 2)])
    report.extend(plain, parts, [("event", "no-label", 1)])
    csv_path, _ = report.finish({})
    with open(csv_path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["line"], r["detail"], r["source"], r["event_id"]) for r in rows] == [
        ("3", "'=1+1", "'@source", "'-id"), ("4", "no label, =x", "'=HYPERLINK(\"http://x\")", "'+id"),
        ("5", "", "urn:ok", "id5"), ("6", "line 6 has no label", "urn:ok", "id-6")]
