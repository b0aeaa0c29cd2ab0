"""Crash safety: `usine pay run` killed with SIGKILL mid-run, run again, ends where one clean run ends."""

from __future__ import annotations

import datetime as dt
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.payments.builders import AS_OF, T0, event, events_for, installation
from tests.payments.workspace import Workspace, ledger_state

SITES = 6000
SOFTWARE = 60


def count(ledger: Path, table: str) -> int:
    """Rows of a ledger table; for "events", the events its registered event files record."""
    if not ledger.exists():
        return 0
    try:
        db = sqlite3.connect(ledger, timeout=0.1)
        try:
            if table == "events":
                return int(db.execute("SELECT coalesce(sum(new_events), 0) FROM event_files").fetchone()[0])
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet, or busy
        return 0


def kill_when(ws: Workspace, files: tuple[Path, ...], table: str, at_least: int, out: Path) -> int:
    """Start `usine pay run`, SIGKILL it as soon as ``table`` has ``at_least`` rows; its exit status."""
    env = {**os.environ, "USINE_HOME": str(ws.root / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "conformity", *ws.args(files, out, AS_OF, "2026-W1"),
                             "--commit-every", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            if count(ws.ledger, table) >= at_least:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def batched(ledger: Path) -> tuple[int, int]:
    db = sqlite3.connect(ledger)
    try:
        return db.execute("SELECT count(*), count(DISTINCT batch) FROM payments WHERE batch IS NOT NULL").fetchone()
    finally:
        db.close()


@pytest.mark.slow
def test_killed_during_intake_then_during_settlement_ends_as_one_clean_run(ws: Workspace, tmp_path: Path) -> None:
    clean = Workspace(tmp_path / "clean")
    for k in range(SOFTWARE):  # 100 sites each: under the cap per software
        ws.label(software=f"sw{k:02d}")
        clean.label(software=f"sw{k:02d}")
    events = [event(installation(f"{100000000 + s}", "SML"[s // SOFTWARE % 3], software=f"sw{s % SOFTWARE:02d}"),
                    T0 + dt.timedelta(hours=h), h)
              for s in range(SITES) for h in range(5 if s % 10 else 3)]  # one site in ten: not enough events
    files = (ws.events("big.jsonl", events, every=1000),)
    reference = clean.run(*files)
    assert reference.returncode == 0, reference.stderr
    expected = ledger_state(clean.ledger)
    assert len(expected["payments"]) == SITES - SITES // 10

    status = kill_when(ws, files, "events", 1000, ws.root / "killed1")
    assert status == -signal.SIGKILL, "the run finished before it could be killed: make the file bigger"
    assert 0 < count(ws.ledger, "events") < len(events) and count(ws.ledger, "payments") == 0

    status = kill_when(ws, files, "payments", 1, ws.root / "killed2")
    assert status == -signal.SIGKILL, "the run finished before it could be killed during settlement"
    assert 0 < count(ws.ledger, "payments") < len(expected["payments"])

    final = ws.run(*files)
    assert final.returncode == 0, final.stderr
    assert ledger_state(ws.ledger) == expected
    assert batched(ws.ledger) == batched(clean.ledger) == (len(expected["payments"]), 1)
    assert final.summary["unfinished_earlier_runs"] == [1, 2]
    assert len(final.orders) == len(expected["payments"])  # every payment ordered: none lost with the crashes


def test_a_batch_recorded_but_not_written_is_written_by_the_next_run(ws: Workspace) -> None:
    """Killed between recording a batch and writing its pain.001: the next run writes the same message."""
    ws.label()
    f = ws.events("e.jsonl", [e for s in ("750100011", "690200022") for e in events_for(installation(s), 5)])
    first = ws.run(f)
    [pain] = first.pain_files()
    original = pain.read_bytes()
    db = sqlite3.connect(ws.ledger)
    db.execute("UPDATE batches SET written = NULL")  # as if the run died right after recording the batch
    db.commit()
    db.close()
    again = ws.run(f)
    assert again.summary["installations_paid"] == 0
    assert [p.name for p in again.pain_files()] == [pain.name]
    assert (again.out / pain.name).read_bytes() == original  # the same message, byte for byte (same MsgId)
    assert {o["msg_id"] for o in again.orders} == {pain.name[len("pain001-"):-len(".xml")]}
    third = ws.run(f)
    assert third.pain_files() == [] and third.orders == []


def _written_batches(ledger: Path) -> list[str | None]:
    db = sqlite3.connect(ledger)
    try:
        return [r[0] for r in db.execute("SELECT written FROM batches ORDER BY id")]
    finally:
        db.close()


def _disk_full(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["write_orders_csv", "write_proofs", "write_totals_csv"])
def test_a_run_failing_before_its_batches_are_marked_written_leaves_no_order_in_out(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    """A batch not marked written is written again, same MsgId, by the next run: a pain.001 left in ``--out`` (a
    folder that existed, so not removed with it) would be a second transmittable order of the same payments, the
    bank's duplicate check the only backstop. The run that fails removes the ones it wrote; the next run writes them."""
    import conformity.payments.run as run_module

    ws.label()
    f = ws.events("e.jsonl", [e for s in ("750100011", "690200022") for e in events_for(installation(s), 5)])
    out = ws.root / "existing-out"
    out.mkdir()
    monkeypatch.setattr(run_module, failing, _disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        ws.run_inproc(f, out=out)
    assert sorted(p.name for p in out.glob("pain001-*.xml")) == []
    assert _written_batches(ws.ledger) == [None]
    monkeypatch.undo()
    again = ws.run(f)
    assert again.returncode == 0, again.stderr
    assert len(again.pain_files()) == 1 and _written_batches(ws.ledger) != [None]
    assert ws.run(f).pain_files() == []


def test_a_run_failing_after_its_batches_are_marked_written_keeps_its_orders(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the batches are marked written the next run writes them no more: the files are the only ones, kept even
    when what follows fails (here, the summary)."""
    import conformity.payments.run as run_module

    ws.label()
    f = ws.events("e.jsonl", events_for(installation("750100011"), 5))
    out = ws.root / "out"
    monkeypatch.setattr(run_module, "write_json", _disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        ws.run_inproc(f, out=out)
    [pain] = out.glob("pain001-*.xml")
    assert _written_batches(ws.ledger) != [None]
    monkeypatch.undo()
    assert ws.run(f).pain_files() == []
