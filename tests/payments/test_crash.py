"""Crash safety: `usine pay run` killed with SIGKILL mid-run, run again, ends where one clean run ends."""

from __future__ import annotations

import datetime as dt
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
