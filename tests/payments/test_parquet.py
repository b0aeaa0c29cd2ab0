"""Parquet events files (issue 14: intake reads JSON lines and Parquet): the same events give the same payments,
refusals and totals as JSON lines; one signed segment over the whole file, verified on the bytes read; a file of
another layout is a clear error before the ledger is touched."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conformity.errors import InputError
from conformity.payments import parquet, reasons
from conformity.payments.intake import MAX_LINE_BYTES
from conformity.segments import sidecar_path
from tests.payments.builders import FORGER, INFRA, T0, event, events_for, installation, modified
from tests.payments.workspace import Outcome, Workspace, ledger_state

DAY = dt.timedelta(days=1)
A = installation("750100011", "M")
B = installation("750100012", "S", site_name='Hôpital "Saint-Éloi"\t(bâtiment B)')
C = installation("750100013", "L")
NOLABEL = installation("750100015", "M", vendor="nobody", software="unlabelled")


def _events() -> list[dict[str, Any]]:
    """Every outcome a JSON object can have (no explicit null: in Parquet a null is an absent attribute)."""
    a = events_for(A, 6)
    evs = [*a, *events_for(B, 5, first=100), *events_for(C, 3, first=200), *events_for(NOLABEL, 2, first=400)]
    evs += [a[0], modified(a[2], data__reference="changed")]  # duplicate, conflicting duplicate
    evs.append(modified(event(A, T0 + 20 * DAY, 50), data__site__size="L"))  # inconsistent installation
    evs.append(modified(event(A, T0 + 3 * DAY, 53), data__bytes=-1))  # invalid-data
    evs.append(modified(event(A, T0 + 3 * DAY, 54), data__kind="fax"))  # invalid-data (kind)
    evs.append(modified(event(A, T0 + 3 * DAY, 55), specversion="1.1"))  # wrong-envelope
    evs.append(modified(event(A, T0 + 3 * DAY, 56), data__wave="2099-W9"))  # unknown-wave
    evs.append(modified(event(A, T0 + 3 * DAY, 57), data__wave="2026-W3"))  # another wave
    evs.append(event(A, dt.datetime(2027, 8, 1, 12, tzinfo=dt.UTC), 58))  # future-dated
    evs.append(event(A, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), 59))  # outside the window
    evs.append(event(A, T0 + 4 * DAY, 60, source="urn:somebody:else"))  # source-untrusted
    evs.append(event(A, T0 + 4 * DAY, 61, document_type="00000-0"))  # not proof of use
    no_subject = event(A, T0 + 5 * DAY, 62)
    no_subject.pop("subject", None)  # an optional attribute absent: counted
    evs.append(no_subject)
    # longer than the fast path reads (FAST_LINE_BYTES): the reference parser's, one at a time, the same outcomes
    evs.append(modified(event(A, T0 + 5 * DAY, 63), data__site__name="é" * 5000))  # invalid-data (maxLength)
    evs.append(modified(event(A, T0 + 5 * DAY, 64), subject="s" * 9000))  # wrong-envelope (not the installation)
    evs.append(modified(event(A, T0 + 5 * DAY, 65), data__reference="r" * (MAX_LINE_BYTES + 1)))  # malformed: too long
    return evs


def _meaning(out: Outcome) -> dict[str, Any]:
    """A run's outputs but the events file's name (which the refusals name)."""
    refusals = [{k: v for k, v in r.items() if k != "file"} for r in out.refusals]
    for r in refusals:
        r["detail"] = r["detail"].replace(".parquet", ".jsonl")
    summary = out.summary
    return {"refusals": refusals, "counts": out.reasons(), "orders": [{k: v for k, v in o.items() if k not in (
        "msg_id", "end_to_end_id", "created", "execution_date", "batch")} for o in out.orders],
        "totals": out.csv("totals.csv"), **{k: summary[k] for k in (
            "lines", "lines_unproven", "events_counted", "events_after_payment", "events_other_waves", "events_refused",
            "installations_paid", "amount_paid")}}


def _sealed_parquet(ws: Workspace, name: str, events: list[dict[str, Any]]) -> Path:
    return parquet.write_sealed(ws.root / "events" / name, events, INFRA)


def test_parquet_and_json_lines_give_the_same_payments_refusals_and_totals(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.label()
    jsonl = ws.events("e.jsonl", _events(), every=10_000)  # one segment, as the Parquet file has
    pq_file = _sealed_parquet(ws, "e.parquet", _events())
    outs = {}
    for name, f in (("jsonl", jsonl), ("parquet", pq_file)):
        ws.ledger = tmp_path / name / "ledger.sqlite3"
        ws.ledger.parent.mkdir()
        outs[name] = ws.run(f, out=tmp_path / name / "out")
        assert outs[name].returncode == 0, outs[name].stderr
    assert ledger_state(tmp_path / "parquet" / "ledger.sqlite3") == ledger_state(tmp_path / "jsonl" / "ledger.sqlite3")
    assert _meaning(outs["parquet"]) == _meaning(outs["jsonl"])
    counts = outs["parquet"].reasons()
    assert set(counts) == {"conflicting-duplicate", "duplicate-event", "future-dated", "inconsistent-installation",
                           "invalid-data", "malformed", "no-label", "not-proof-of-use", "outside-window",
                           "source-untrusted", "unknown-wave", "wrong-envelope"}
    summary = outs["parquet"].summary
    assert summary["installations_paid"] == 2 and len(outs["parquet"].orders) == 2  # A and B; C has too few events
    assert summary["lines"] == len(_events()) and summary["events_other_waves"] == 1


def test_a_null_in_parquet_is_an_absent_attribute(ws: Workspace) -> None:
    """A required attribute null is missing (refused); an optional one null is absent (counted)."""
    ws.label()
    no_wave = modified(event(A, T0, 1), data__wave=None)
    no_subject = modified(event(A, T0 + DAY, 2), subject=None)
    no_data = modified(event(A, T0 + 2 * DAY, 3), data=None)
    f = _sealed_parquet(ws, "e.parquet", [no_wave, no_subject, no_data])
    r = ws.run(f)
    assert r.returncode == 0, r.stderr
    by_line = {x["line"]: x for x in r.refusals}
    assert by_line[1]["reason"] == reasons.INVALID_DATA and "wave: required key is missing" in by_line[1]["detail"]
    assert 2 not in by_line  # counted
    assert by_line[3]["reason"] in (reasons.WRONG_ENVELOPE, reasons.INVALID_DATA) and "data" in by_line[3]["detail"]
    assert ledger_state(ws.ledger)["installations"][0][7] == 1  # one counted event


def test_events_seen_in_json_lines_are_not_paid_again_from_parquet(ws: Workspace) -> None:
    """Identity is (source, id), not the container: the same events repackaged are duplicates."""
    ws.label()
    evs = events_for(A, 6)
    first = ws.run(ws.events("e.jsonl", evs))
    again = ws.run(_sealed_parquet(ws, "e.parquet", evs))
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert len(first.orders) == 1 and again.orders == []
    assert again.reasons() == {reasons.DUPLICATE_EVENT: 6}


@pytest.mark.parametrize("how", ["edited", "re-encoded"])
def test_a_parquet_file_changed_after_sealing_is_refused_row_by_row(ws: Workspace, how: str) -> None:
    """One value changed, or the same rows written again (other bytes): the whole-file segment no longer hashes."""
    ws.label()
    evs = events_for(A, 6)
    f = _sealed_parquet(ws, "e.parquet", evs)
    if how == "edited":
        evs[3] = modified(evs[3], data__site__size="L")
        parquet.write_events(f, evs)
    else:
        pq.write_table(pq.read_table(f), f, compression="gzip")
    r = ws.run(f)
    assert r.returncode == 0, r.stderr
    assert r.reasons() == {reasons.SEGMENT_MISMATCH: 6} and r.orders == []
    assert ledger_state(ws.ledger)["events"] == []


def test_a_parquet_file_without_segments_or_with_a_forged_one_pays_nothing(ws: Workspace) -> None:
    ws.label()
    unsigned = ws.root / "events" / "unsigned.parquet"
    parquet.write_events(unsigned, events_for(A, 6))
    forged = parquet.write_sealed(ws.root / "events" / "forged.parquet", events_for(A, 6, first=10), FORGER)
    r = ws.run(unsigned, forged)
    assert r.returncode == 0, r.stderr
    assert r.reasons() == {reasons.EVENT_UNSIGNED: 6, reasons.EVENT_SIGNATURE_INVALID: 6} and r.orders == []


def test_a_json_lines_sidecar_beside_a_parquet_copy_proves_nothing(ws: Workspace) -> None:
    """A genuine segment of the JSON-lines file hashes its lines, not the Parquet file's bytes."""
    ws.label()
    evs = events_for(A, 6)
    jsonl = ws.events("e.jsonl", evs, every=6)
    f = ws.root / "events" / "e.parquet"
    parquet.write_events(f, evs)
    sidecar_path(f).write_bytes(sidecar_path(jsonl).read_bytes())
    r = ws.run(f)
    assert r.returncode == 0, r.stderr
    assert r.reasons() == {reasons.SEGMENT_MISMATCH: 6}


def test_a_segment_claiming_fewer_rows_than_the_file_leaves_the_rest_unsigned(ws: Workspace) -> None:
    from conformity.segments import seal_whole

    ws.label()
    f = ws.root / "events" / "e.parquet"
    parquet.write_events(f, events_for(A, 6))
    seal_whole(f, INFRA, count=4, sources=["urn:usine:sandbox:dmp"], time_min=None, time_max=None)
    r = ws.run(f)
    assert r.reasons() == {reasons.EVENT_UNSIGNED: 2}
    seal_whole(f, INFRA, count=7, sources=["urn:usine:sandbox:dmp"], time_min=None, time_max=None)
    r = ws.run(f)
    assert r.reasons() == {reasons.SEGMENT_MISMATCH: 6}


def test_the_rows_read_are_the_bytes_hashed_whatever_happens_to_the_file(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is replaced right after intake copied (and hashed) it: the copy is what is read and paid."""
    ws.label()
    evs = events_for(A, 6)
    f = _sealed_parquet(ws, "e.parquet", evs)
    real_take = parquet.take

    def take_then_replace(path: Path, *args: Any) -> Any:
        out = real_take(path, *args)
        parquet.write_events(path, [modified(e, data__site__size="L") for e in evs])
        return out

    monkeypatch.setattr(parquet, "take", take_then_replace)
    stats = ws.run_inproc(f)
    assert stats.counted == 6 and stats.paid == 1
    db = sqlite3.connect(ws.ledger)
    assert db.execute("SELECT DISTINCT site_size FROM installations").fetchall() == [("M",)]
    db.close()


def _schema_without(name: str) -> pa.Schema:
    return pa.schema([f for f in parquet.LAYOUT if f.name != name])


BAD_LAYOUTS: dict[str, tuple[pa.Table, str]] = {
    "missing column": (pa.table({"id": ["x"]}), "column specversion is missing"),
    "wrong type": (pa.Table.from_pylist([{}], schema=_schema_without("time")).append_column(
        "time", pa.array([1], pa.int64())), "column time is int64, the layout wants string"),
    "extra column": (pa.Table.from_pylist([{}], schema=parquet.LAYOUT).append_column(
        "traceparent", pa.array(["00-x"])), "column traceparent is not in the layout"),
    "nested type": (pa.Table.from_pylist([{}], schema=_schema_without("data")).append_column(
        "data", pa.array([{"bytes": "12"}])), "column data.bytes is string, the layout wants int64"),
}


def _with_a_second(table: pa.Table, column: str, values: pa.Array, nested: str = "") -> pa.Table:
    """``table`` with another column (or, under the struct column ``nested``, another field) named ``column``."""
    if not nested:
        return table.append_column(column, values)
    struct = table.column(nested).combine_chunks()
    fields = [*struct.type, pa.field(column, values.type)]
    arrays = [struct.field(i) for i in range(struct.type.num_fields)] + [values]
    return table.set_column(table.schema.get_field_index(nested), nested,
                            pa.StructArray.from_arrays(arrays, fields=fields))


#: a column or field named twice: DuckDB reads the second as ``kind_1`` and the first as the attribute, another reader
#: may take the other one or stop: which value a row holds must not depend on the engine
BAD_LAYOUTS["column named twice"] = (
    _with_a_second(pa.Table.from_pylist([{}], schema=parquet.LAYOUT), "id", pa.array(["evt-2"])),
    "column id appears 2 times")
BAD_LAYOUTS["nested field named twice"] = (
    _with_a_second(pa.Table.from_pylist([{}], schema=parquet.LAYOUT), "kind", pa.array(["fax"]), nested="data"),
    "column data.kind appears 2 times")


@pytest.mark.parametrize("bad", sorted(BAD_LAYOUTS))
def test_a_parquet_file_of_another_layout_exits_2_before_the_ledger_is_touched(ws: Workspace, bad: str) -> None:
    ws.label()
    table, message = BAD_LAYOUTS[bad]
    f = ws.root / "events" / "e.parquet"
    f.parent.mkdir(parents=True)
    pq.write_table(table, f)
    r = ws.run(ws.events("good.jsonl", events_for(A, 6)), f)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "e.parquet" in r.stderr and "Traceback" not in r.stderr
    assert not ws.ledger.exists()


@pytest.mark.parametrize("content", [b"PAR1 not really", b'{"specversion": "1.0"}\n', b""])
def test_an_unreadable_parquet_file_exits_2_saying_so(ws: Workspace, content: bytes) -> None:
    ws.label()
    f = ws.root / "events" / "e.parquet"
    f.parent.mkdir(parents=True)
    f.write_bytes(content)
    r = ws.run(f)
    assert r.returncode == 2, r.stderr
    assert "not a readable Parquet file" in r.stderr and "e.parquet" in r.stderr and "Traceback" not in r.stderr
    assert not ws.ledger.exists()


def test_a_folder_of_events_takes_json_lines_and_parquet(ws: Workspace) -> None:
    ws.label()
    ws.events("a.jsonl", events_for(A, 3))
    _sealed_parquet(ws, "b.parquet", events_for(A, 3, start=T0 + 3 * DAY, first=3))
    r = ws.run(ws.root / "events")
    assert r.returncode == 0, r.stderr
    assert r.refusals == [] and len(r.orders) == 1


def test_layout_check_and_writer_agree() -> None:
    assert parquet.layout_problems(parquet.LAYOUT) == []
    with pytest.raises(ValueError, match="traceparent"):
        parquet.write_events(Path("/nonexistent/x.parquet"), [{"traceparent": "x"}])
    with pytest.raises(InputError, match="not found"):
        parquet.check(Path("/nonexistent/x.parquet"))
