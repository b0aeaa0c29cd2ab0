"""The refusal report is a pair (refusals.csv, refusals.json): a full disk while the second is written leaves the
previous pair, never a new CSV beside the previous run's JSON."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity.payments.report import CSV_NAME, JSON_NAME, Refusal, RefusalReport
from tests.helpers import small_tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        yield disk


def report(out: Path, n: int) -> RefusalReport:
    made = RefusalReport(out)
    for i in range(n):
        made.add(Refusal("event", "unknown-label", f"event {i} names no label this run knows", file="events.jsonl",
                         line=i + 1, source="urn:usine:sandbox:test", event_id=f"evt-{i:06d}",
                         time="2026-12-05T10:00:00Z", wave="2026-W1"))
    return made


def test_a_refusal_report_that_does_not_fit_leaves_the_previous_one_whole(small_disk: Path) -> None:
    out = small_disk / "out"
    report(out, 1).finish({"run": "run-1"})
    before = {name: (out / name).read_bytes() for name in (CSV_NAME, JSON_NAME)}
    big = report(out, 500)  # its CSV and JSON lines fit as scratch files; the JSON document does not
    with pytest.raises(OSError) as raised:
        big.finish({"run": "run-2"})
    big.discard()
    assert raised.value.errno == errno.ENOSPC
    assert {name: (out / name).read_bytes() for name in (CSV_NAME, JSON_NAME)} == before
    assert sorted(p.name for p in out.iterdir()) == sorted([CSV_NAME, JSON_NAME])
