"""A labels folder a day behind loses no event for good: refusals that depend on the labels a run was given
(``no-label``, ``version-not-covered``, ``label-invalid``, ``label-expired``, ``label-not-yet-valid``,
``label-revoked``) are judged again when the event is presented again in a later run, with that run's labels; an
event counted (or after-payment) is settled and never judged again.

What a vendor might try with it (events presented again) gains nothing: a label covers no event before its signed
``issued`` nor after its expiry, a revocation refuses the version from its time on under every label issued before
it, an event is its (source, id) and signed content (another content under the same id is a conflict), and the same
data counts once however its events come back.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from conformity.payments import parquet
from conformity.payments.store import store_dir
from tests.payments.builders import FORGER, INFRA, T0, events_for, installation, modified, revocation
from tests.payments.mixed import outputs, same_data
from tests.payments.mixed import run as mixed_run
from tests.payments.workspace import Outcome, Workspace, ledger_state

DAY = dt.timedelta(days=1)
HOSPITAL_M = installation("750100011", "M")


def paid(r: Outcome) -> int:
    assert r.returncode == 0, r.stderr
    return int(r.summary["installations_paid"])


def orders(r: Outcome) -> list[tuple[str, str]]:
    return [(o["vendor_id"], o["amount"]) for o in r.csv("payment-orders.csv")]


def test_events_refused_no_label_count_once_the_missing_label_is_in_the_folder(ws: Workspace) -> None:
    """The brief's case: the covering label (valid at the events' times) was not yet in the run's labels folder."""
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))
    r1 = ws.run(f)
    assert r1.reasons() == {"no-label": 5} and paid(r1) == 0 and orders(r1) == []
    assert "no valid label for vendor acme, software acme-ehr" in r1.refusals[0]["detail"]
    ws.label()  # issued 2026-02-01: valid at every event's time
    r2 = ws.run(f)
    assert r2.reasons() == {} and paid(r2) == 1 and r2.summary["events_counted"] == 5
    assert len(orders(r2)) == 1
    state = ledger_state(ws.ledger)
    r3 = ws.run(f)  # presented a third time: settled, nothing twice
    assert r3.reasons() == {"duplicate-event": 5} and paid(r3) == 0 and orders(r3) == []
    assert all("(counted)" in x["detail"] for x in r3.refusals)
    assert ledger_state(ws.ledger) == state


def test_a_nightly_run_over_the_whole_folder_counts_yesterdays_events_once_the_label_arrived(ws: Workspace) -> None:
    """README: a nightly run over the folder of daily files (every file again). Day 1 ran with the label not yet
    copied; day 2's run, over both files, counts day 1's events with day 2's."""
    day1 = ws.events("day1.jsonl", events_for(HOSPITAL_M, 3))
    r1 = ws.run(day1)
    assert r1.reasons() == {"no-label": 3} and paid(r1) == 0
    ws.label()
    day2 = ws.events("day2.jsonl", events_for(HOSPITAL_M, 2, start=T0 + 3 * DAY, first=3))
    r2 = ws.run(day1, day2)
    assert r2.reasons() == {} and r2.summary["events_counted"] == 5 and paid(r2) == 1
    r3 = ws.run(day1, day2)
    assert r3.reasons() == {"duplicate-event": 5} and paid(r3) == 0


def test_version_not_covered_then_the_label_covering_it(ws: Workspace) -> None:
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))  # version 3.2
    ws.label(versions=("3.1",))
    r1 = ws.run(f)
    assert r1.reasons() == {"version-not-covered": 5} and paid(r1) == 0
    ws.label(versions=("3.1", "3.2"))
    r2 = ws.run(f)
    assert r2.reasons() == {} and paid(r2) == 1


def test_label_invalid_then_the_genuine_label(ws: Workspace) -> None:
    """Only a label that does not verify claims the software (a copy damaged, another key): label-invalid; the
    agency's own label copied later counts the events."""
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))
    ws.label(key=FORGER, name="damaged.json")
    r1 = ws.run(f)
    assert r1.reasons() == {"label-invalid": 5} and paid(r1) == 0
    ws.label()
    r2 = ws.run(f)
    assert r2.reasons() == {} and r2.reasons("label") == {"label-invalid": 1} and paid(r2) == 1


def test_label_expired_then_its_renewal(ws: Workspace) -> None:
    """The folder holds the old label (expired on June 3rd) but not yet its renewal."""
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 7))  # June 1st to 7th
    ws.label(expires="2026-06-03")
    r1 = ws.run(f)
    assert r1.reasons() == {"label-expired": 4} and r1.summary["events_counted"] == 3 and paid(r1) == 0
    ws.label(issued="2026-06-03T12:00:00Z")
    r2 = ws.run(f)  # June 1st-3rd counted in run 1: settled
    assert r2.reasons() == {"duplicate-event": 3} and r2.summary["events_counted"] == 4 and paid(r2) == 1


def test_label_not_yet_valid_then_the_earlier_label(ws: Workspace) -> None:
    """The folder holds the renewed label (issued June 4th) but not the one it replaced, which covered June 1st-3rd."""
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))
    ws.label(issued="2026-06-04T00:00:00Z")
    r1 = ws.run(f)
    assert r1.reasons() == {"label-not-yet-valid": 3} and paid(r1) == 0
    ws.label(expires="2026-06-04")
    r2 = ws.run(f)  # June 4th-5th counted in run 1: settled
    assert r2.reasons() == {"duplicate-event": 2} and r2.summary["events_counted"] == 3 and paid(r2) == 1


def test_refused_from_parquet_then_counted_from_json_lines_and_back(ws: Workspace) -> None:
    """An event is its source and id, not its container: refused no-label from the infrastructure's Parquet file,
    counted from its JSON lines once the label is there, a duplicate from the Parquet file after."""
    events = events_for(HOSPITAL_M, 5)
    pq_file = parquet.write_sealed(ws.root / "events" / "e.parquet", events, INFRA)
    r1 = ws.run(pq_file)
    assert r1.reasons() == {"no-label": 5} and paid(r1) == 0
    ws.label()
    r2 = ws.run(ws.events("e.jsonl", events))
    assert r2.reasons() == {} and paid(r2) == 1
    r3 = ws.run(pq_file)
    assert r3.reasons() == {"duplicate-event": 5} and paid(r3) == 0


# ---------------------------------------------------------------------------------------------- the adversary
def test_a_label_issued_after_the_events_never_counts_them_however_often_presented(ws: Workspace) -> None:
    """Refused no-label, then the vendor gets a label and the events come back: a label covers nothing before its
    signed issue time, so they stay refused (label-not-yet-valid), run after run."""
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))
    assert ws.run(f).reasons() == {"no-label": 5}
    ws.label(issued="2026-07-01T00:00:00Z")
    for _ in range(2):
        r = ws.run(f)
        assert r.reasons() == {"label-not-yet-valid": 5} and paid(r) == 0 and r.summary["events_counted"] == 0


def test_a_revoked_version_stays_refused_after_a_new_label(ws: Workspace) -> None:
    """Revoked on June 3rd: events after it are label-revoked; the label issued after reinstatement (June 10th)
    covers events from its issue only, never the ones refused in between, whichever run presents them."""
    doc = ws.label()
    ws.revoke(revocation(doc["label_id"], T0 + 2 * DAY + dt.timedelta(hours=1)))
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 8))  # June 1st to 8th
    r1 = ws.run(f)
    assert r1.reasons() == {"label-revoked": 5} and r1.summary["events_counted"] == 3 and paid(r1) == 0
    ws.label(issued="2026-06-10T00:00:00Z")
    r2 = ws.run(f)
    assert r2.reasons() == {"label-revoked": 5, "duplicate-event": 3} and paid(r2) == 0
    assert r2.summary["events_counted"] == 0


def test_refused_events_presented_again_with_other_content_are_conflicts(ws: Workspace) -> None:
    """An event refused no-label is its (source, id) and its signed content: presented again with other content
    (another site, the same ids), once the label is there, it is a conflict, never a second chance to be paid."""
    events = events_for(HOSPITAL_M, 5)
    assert ws.run(ws.events("a.jsonl", events)).reasons() == {"no-label": 5}
    ws.label()
    other = [modified(e, data__reference="other", data__sha256="0" * 64) for e in events]
    r = ws.run(ws.events("b.jsonl", other))
    assert r.reasons() == {"conflicting-duplicate": 5} and paid(r) == 0


def test_the_same_data_counts_once_when_refused_events_come_back(ws: Workspace) -> None:
    """Refused no-label: five events, two carrying the same data. Counted in the next run: the data once."""
    events = events_for(HOSPITAL_M, 6)
    events[5:] = same_data(events[5:], events[0])
    f = ws.events("e.jsonl", events)
    assert ws.run(f).reasons() == {"no-label": 6}
    ws.label()
    r = ws.run(f)
    assert r.reasons() == {"duplicate-data": 1} and r.summary["events_counted"] == 5 and paid(r) == 1
    r3 = ws.run(f)  # the refused copy judged again: its installation is paid now (after-payment: nothing)
    assert r3.reasons() == {"duplicate-event": 5} and paid(r3) == 0 and orders(r3) == []
    assert r3.summary["events_counted"] == 0 and r3.summary["events_after_payment"] == 1


def details(r: Outcome) -> list[Any]:
    return [(x["line"], x["reason"]) for x in r.refusals]


def test_a_refused_event_is_judged_once_per_run(ws: Workspace, tmp_path: Path) -> None:
    """Inside one run the labels do not change: an event presented twice is judged once, its repeat a duplicate
    naming the line judged (and its outcome)."""
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 2) * 2)
    r = ws.run(f)
    assert details(r) == [(1, "no-label"), (2, "no-label"), (3, "duplicate-event"), (4, "duplicate-event")]
    assert "line 1 (no-label)" in r.refusals[2]["detail"]


# ---------------------------------------------------------------------------------------------- Spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_judges_events_again_with_the_later_labels_as_duckdb_does(spark: Any, tmp_path: Path) -> None:
    """Run 1 without the labels (version-not-covered, label-expired: the folder holds only the old label of another
    version; no-label: a software never labelled); runs 2 and 3 with the labels and a second file repeating the
    never-labelled events: Spark's ledgers, store sizes and outputs are DuckDB's."""
    ws = Workspace(tmp_path / "ws")
    never = events_for(installation("750100013", software="other-ehr", vendor="other"), 3, first=20)
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5) + events_for(installation("750100012", version="3.1"), 6,
                                                                     first=10) + never)
    g = ws.events("g.jsonl", never)
    ws.label(versions=("3.1",), expires="2026-06-03")
    got: dict[str, list[dict[str, Any]]] = {"duckdb": [], "spark": []}
    for n in (1, 2, 3):
        if n == 2:
            ws.label()
            ws.label(versions=("3.1",), issued="2026-06-03T12:00:00Z")
        for engine in got:
            out = tmp_path / engine / f"out{n}"
            files = (f,) if n == 1 else (f, g)
            got[engine].append(outputs(out, mixed_run(ws, files, tmp_path / engine / "ledger.sqlite3", out, engine)))
        ledgers = {e: tmp_path / e / "ledger.sqlite3" for e in got}
        assert ledger_state(ledgers["spark"]) == ledger_state(ledgers["duckdb"])
        assert [rows(ledgers[e]) for e in got] == [22 if n > 1 else 14] * 2  # the events whose outcome changed
        assert got["spark"][-1] == got["duckdb"][-1], f"run {n} differs"
    counts = [json.loads(run["refusals.json"])["counts"]["event"] for run in got["duckdb"]]
    assert counts[0] == {"version-not-covered": 5, "label-expired": 3, "no-label": 3}
    assert counts[1] == {"duplicate-event": 6, "no-label": 3} and got["duckdb"][1]["stats"]["paid"] == 2
    assert counts[2] == {"duplicate-event": 14, "no-label": 3} and got["duckdb"][2]["stats"]["paid"] == 0


# ---------------------------------------------------------------------------------------------- the store's size
def rows(ledger: Path) -> int:
    """The rows of a ledger's event store."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(store_dir(ledger).glob("*.parquet")))


def test_an_event_judged_again_to_the_same_refusal_adds_no_row_to_the_store(ws: Workspace) -> None:
    """A nightly run over every file again judges each refused event again: one that is refused for the same
    reason (a revoked version's sites keep sending data) adds nothing to the event store, whose size stays the number
    of events, not events times nights. Inside the run it is still judged once: a repeat in another file is a
    duplicate naming the line judged in this run, as when a row was written for it."""
    doc = ws.label()
    ws.revoke(revocation(doc["label_id"], T0 - dt.timedelta(hours=1)))
    events = events_for(HOSPITAL_M, 5)
    f, g = ws.events("f.jsonl", events), ws.events("g.jsonl", events)
    assert ws.run(f).reasons() == {"label-revoked": 5} and rows(ws.ledger) == 5
    state = ledger_state(ws.ledger)
    for run in (2, 3):
        r = ws.run(f, g)
        assert r.reasons() == {"label-revoked": 5, "duplicate-event": 5} and paid(r) == 0
        repeats = [x["detail"] for x in r.refusals if x["reason"] == "duplicate-event"]
        assert repeats == [f"already recorded at run {run}, {f} line {n} (label-revoked)" for n in range(1, 6)]
        assert rows(ws.ledger) == 5 and ledger_state(ws.ledger) == state
