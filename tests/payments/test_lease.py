"""Attack 5: one run per ledger, enforced by the database, whatever path opened it; attack 6: IBANs at rest.

Two real processes: a run holds the ledger while a second starts through a hard link or a symlink.
The second stops with "ledger … in use by run N since T" (exit 3), the first finishes, and the ledger
ends as one clean run: nothing paid twice, no run record lost.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformity.payments.lease import LedgerBusy
from conformity.payments.ledger import Ledger
from conformity.payments.ledger_schema import MIGRATIONS, SCHEMA_VERSION
from tests.payments.builders import AS_OF, T0, WAVE, event, events_for, installation
from tests.payments.workspace import Outcome, Workspace, ledger_state

SITES = 3000


def big_workload(ws: Workspace) -> Path:
    """Enough events that a run lasts a few seconds (small commits): time for a second process to start."""
    for k in range(30):
        ws.label(software=f"sw{k:02d}")
    import datetime as dt

    events = [event(installation(f"{100000000 + s}", "S", software=f"sw{s % 30:02d}"), T0 + dt.timedelta(hours=h), h)
              for s in range(SITES) for h in range(5)]
    return ws.events("big.jsonl", events, every=1000)


def start(ws: Workspace, files: tuple[Path, ...], out: Path, ledger: Path | None = None) -> subprocess.Popen[str]:
    args = ws.args(files, out, AS_OF, WAVE)
    if ledger is not None:
        args[args.index("--ledger") + 1] = str(ledger)
    env = {**os.environ, "USINE_HOME": str(ws.root / "home")}
    return subprocess.Popen([sys.executable, "-m", "conformity", *args, "--commit-every", "100"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def finish(proc: subprocess.Popen[str], out: Path) -> Outcome:
    stdout, stderr = proc.communicate(timeout=300)
    return Outcome(proc.returncode, stdout, stderr, out)


def lease_run(ledger: Path) -> int | None:
    """The run holding the lease, read as another process would (waits until it is there)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
            try:
                row = db.execute("SELECT run FROM lease").fetchone()
            finally:
                db.close()
            if row is not None and row[0] is not None:
                return int(row[0])
        except sqlite3.OperationalError:
            pass
        time.sleep(0.02)
    raise AssertionError("the first run never took the lease")


def runs(ledger: Path) -> list[tuple[int, bool]]:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        return [(r[0], r[1] is not None) for r in db.execute("SELECT id, finished FROM runs ORDER BY id")]
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["hard link", "symlink"])
def test_a_second_run_through_another_name_is_refused_while_the_first_pays(ws: Workspace, how: str) -> None:
    files = (big_workload(ws),)
    first = start(ws, files, ws.root / "first")
    assert lease_run(ws.ledger) == 1
    other = ws.root / "elsewhere" / "other-name.sqlite3"
    other.parent.mkdir()
    (os.link if how == "hard link" else os.symlink)(ws.ledger, other)
    second = finish(start(ws, files, ws.root / "second", ledger=other), ws.root / "second")
    assert first.poll() is None, "the first run ended before the second started: make the workload bigger"
    first_done = finish(first, ws.root / "first")

    assert second.returncode == 3, second.stderr
    assert "Traceback" not in second.stderr
    if how == "hard link":
        # the holder is named when its lease is in the main file already (lease.peek reads no write-ahead log, and
        # the second name has none of its own): a matter of the first run's checkpoints, so not required here
        assert "has 2 names (hard links)" in second.stderr
    else:
        assert "is in use by run 1 since" in second.stderr
    assert not (ws.root / "second").exists() or not list((ws.root / "second").glob("pain001-*.xml"))
    assert first_done.returncode == 0, first_done.stderr
    assert first_done.summary["installations_paid"] == SITES
    assert runs(ws.ledger) == [(1, True)]  # the first run's record, finished; nothing from the second
    state = ledger_state(ws.ledger)
    assert len(state["payments"]) == SITES == len({(p[1], p[2]) for p in state["payments"]})
    assert len(first_done.pain_files()) == 1

    if how == "hard link":  # while both names exist, no run at all: each would have its own write-ahead log
        again = ws.run(*files, extra=("--ledger", str(other)))
        assert again.returncode == 3 and "has 2 names" in again.stderr
        other.unlink()
    again = ws.run(*files)
    assert again.returncode == 0 and again.summary["installations_paid"] == 0
    assert ledger_state(ws.ledger)["payments"] == state["payments"]


def test_runs_through_a_hard_link_made_beforehand_are_refused(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(installation("750100011"), 5))
    assert ws.run(f).summary["installations_paid"] == 1
    before = ledger_state(ws.ledger)
    os.link(ws.ledger, ws.root / "copy.sqlite3")
    more = ws.events("more.jsonl", events_for(installation("690200022"), 5))
    for ledger in (ws.ledger, ws.root / "copy.sqlite3"):
        r = ws.run(more, extra=("--ledger", str(ledger)))
        assert r.returncode == 3 and "has 2 names (hard links)" in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == [(1, True)]


def test_status_reads_a_ledger_in_use(ws: Workspace) -> None:
    ws.label()
    with Ledger(ws.ledger) as held:
        held.begin_run(WAVE, AS_OF, "2027-01-01T00:00:00Z", "{}")
        proc = usine("pay", "status", "--ledger", str(ws.ledger))
        assert proc.returncode == 0, proc.stderr
        assert "in use by run 1 since" in proc.stdout and f"pid {os.getpid()}" in proc.stdout
    assert "not in use" in usine("pay", "status", "--ledger", str(ws.ledger)).stdout


def sql(ledger: Path, statement: str) -> None:
    """A write by another connection (an operator's sqlite3 shell)."""
    db = sqlite3.connect(ledger)
    try:
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def usine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformity", *args], capture_output=True, text=True, check=False)


def killed_holding_the_lease(ledger: Path) -> None:
    """A process that takes the lease, starts run 1 and dies (SIGKILL) without giving it back."""
    code = ("import os; from pathlib import Path; from conformity.payments.ledger import Ledger; "
            f"l = Ledger(Path({str(ledger)!r})); l.begin_run('2026-W1', 'x', 'y', '{{}}'); os.kill(os.getpid(), 9)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == -signal.SIGKILL


def test_a_killed_runs_lease_is_taken_over_and_said_so(ws: Workspace) -> None:
    files = (ws.events("e.jsonl", events_for(installation("750100011"), 5)),)
    ws.label()
    killed_holding_the_lease(ws.ledger)
    status = usine("pay", "status", "--ledger", str(ws.ledger)).stdout
    assert "in use by run 1" in status and "that process is gone" in status
    r = ws.run(*files)
    assert r.returncode == 0, r.stderr
    assert r.summary["lease_taken_over_from_run"] == 1 and "was taken over" in r.stderr
    assert r.summary["unfinished_earlier_runs"] == [1] and r.summary["installations_paid"] == 1


def test_a_lease_held_from_another_host_needs_an_explicit_release(ws: Workspace) -> None:
    ws.label()
    killed_holding_the_lease(ws.ledger)
    sql(ws.ledger, "UPDATE lease SET host = 'payments-2.agency.example'")  # it ran on another machine
    f = ws.events("e.jsonl", events_for(installation("750100011"), 5))
    r = ws.run(f)
    assert r.returncode == 3 and "on payments-2.agency.example" in r.stderr
    assert f"usine pay lease --ledger {ws.ledger} --release 1" in r.stderr
    wrong = usine("pay", "lease", "--ledger", str(ws.ledger), "--release", "7")
    assert wrong.returncode == 3 and "not by run 7" in wrong.stderr
    ok = usine("pay", "lease", "--ledger", str(ws.ledger), "--release", "1")
    assert ok.returncode == 0 and "released the lease of run 1" in ok.stdout
    r = ws.run(f)
    assert r.returncode == 0 and r.summary["installations_paid"] == 1


def test_pay_lease_says_its_exit_codes_and_releases_nothing_from_a_free_ledger(ws: Workspace) -> None:
    """`pay lease --release` on a ledger no run holds releases nothing (exit 3, saying so); its help lists the codes."""
    ws.label()
    f = ws.events("e.jsonl", events_for(installation("750100011"), 5))
    assert ws.run(f).returncode == 0
    free = usine("pay", "lease", "--ledger", str(ws.ledger), "--release", "1")
    assert free.returncode == 3 and "is not in use: no lease to release" in free.stderr, free.stderr
    shown = usine("pay", "lease", "--ledger", str(ws.ledger))
    assert shown.returncode == 0 and "not in use" in shown.stdout
    helped = " ".join(usine("pay", "lease", "--help").stdout.split())
    assert "Exit 0 shown or released, 2 no ledger there, 3 nothing released" in helped, helped


def test_a_live_local_run_cannot_be_released(ws: Workspace) -> None:
    with Ledger(ws.ledger) as held:
        held.begin_run(WAVE, AS_OF, "x", "{}")
        proc = usine("pay", "lease", "--ledger", str(ws.ledger), "--release", "1")
        assert proc.returncode == 3 and "still running here" in proc.stderr


def test_a_run_whose_lease_was_released_stops_without_committing(ws: Workspace) -> None:
    with Ledger(ws.ledger) as held:
        held.begin_run(WAVE, AS_OF, "x", "{}")
        sql(ws.ledger, "DELETE FROM lease")
        held.begin()
        held.db.execute("INSERT INTO runs (wave, as_of, started, inputs) VALUES ('w', 'x', 'y', '{}')")
        with pytest.raises(LedgerBusy, match="lease was released by someone else"):
            held.commit()
    assert runs(ws.ledger) == [(1, False)]


def test_one_ledger_object_at_a_time_in_one_process(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite3"), pytest.raises(LedgerBusy, match="in use by a run starting"):
        Ledger(tmp_path / "l.sqlite3")


def test_a_version_1_ledger_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[1])
    db.execute("INSERT INTO meta VALUES ('ledger_id', 'abc'), ('schema_version', '1')")
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        assert ledger.meta("schema_version") == str(SCHEMA_VERSION) and ledger.meta("ledger_id") == "abc"


# ---------------------------------------------------------------------------------------------- secrets at rest
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ledger_and_the_orders_are_private_from_their_creation(ws: Workspace, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ws.label()
        ledger = tmp_path / "state" / "payments" / "ledger.sqlite3"
        out = tmp_path / "orders" / "run1"
        r_args: dict[str, Any] = {"extra": ("--ledger", str(ledger)), "out": out}
        r = ws.run(ws.events("e.jsonl", events_for(installation("750100011"), 5)), **r_args)
        assert r.returncode == 0 and r.summary["installations_paid"] == 1, r.stderr
        with Ledger(ledger):  # while open: the WAL and shared-memory files exist
            for f in (ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm")):
                assert mode(f) == 0o600, f
        assert mode(ledger.parent) == 0o700
        assert mode(out) == 0o700
        for f in out.iterdir():
            assert mode(f) == 0o600, f  # pain.001 and the orders CSV carry IBANs
        assert any(f.name.startswith("pain001-") for f in out.iterdir())
    finally:
        os.umask(old)


def test_an_existing_ledger_readable_by_others_is_tightened(ws: Workspace) -> None:
    with Ledger(ws.ledger):
        pass
    os.chmod(ws.ledger, 0o644)
    with Ledger(ws.ledger):
        assert mode(ws.ledger) == 0o600
