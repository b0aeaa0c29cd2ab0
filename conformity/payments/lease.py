"""One run per ledger, enforced by the database: a lease row taken in a ``BEGIN IMMEDIATE`` transaction.

The ``lease`` table holds at most one row: the run holding the ledger, its process (pid, host, boot,
process start time), when it started and its last heartbeat, and a random token. A run takes the
lease before it writes anything and gives it back when it ends; it refreshes the heartbeat with its
commits and stops if its token is gone (the lease was released under it). Whatever path opened the
database (a symlink included), a second run sees the row and stops with "ledger in use by run N since
T" (exit 3). A hard link would give SQLite a second write-ahead log beside the other name, so a
ledger file with more than one name is refused outright.

A crashed run's lease is taken over only when the holder is provably gone: same host and boot, and
no process with that pid and start time. Otherwise (another host, say) the operator releases it
explicitly: ``usine pay lease --release RUN``. Every takeover is reported.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from conformity.errors import EXIT_LEDGER_BUSY, UsineError

HEARTBEAT_SECONDS = 5.0


class LedgerBusy(UsineError):
    """Another run holds the ledger (or the ledger file cannot be shared safely)."""

    exit_code = EXIT_LEDGER_BUSY


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or "" when unknown."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True, slots=True)
class Holder:
    """A process that holds, or held, a ledger's lease."""

    pid: int
    host: str
    boot: str
    started_at: str  # the process's start time, to tell a reused pid apart

    @classmethod
    def me(cls) -> Holder:
        pid = os.getpid()
        try:
            pid_ns = str(os.stat("/proc/self/ns/pid").st_ino)
        except OSError:
            pid_ns = ""
        boot = _read("/proc/sys/kernel/random/boot_id")
        return cls(pid, socket.gethostname(), f"{boot}/{pid_ns}" if boot and pid_ns else "", process_start(pid))

    def local(self) -> bool:
        """Whether this process can tell if the holder runs: same host, boot and pid namespace."""
        here = Holder.me()
        return bool(self.boot) and (self.host, self.boot) == (here.host, here.boot)

    def gone(self) -> bool:
        """True only when provably not running: a local holder whose pid is free or now another process."""
        if not self.local():
            return False  # another machine, container or boot: only an operator can say
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return bool(self.started_at) and process_start(self.pid) not in ("", self.started_at)


@dataclass(frozen=True, slots=True)
class Lease:
    """The lease row: who holds the ledger, since when."""

    run: int | None
    holder: Holder
    started: str
    heartbeat: str
    token: str

    def describe(self, path: Path | str) -> str:
        who = f"run {self.run}" if self.run is not None else "a run starting"
        text = (f"ledger {path} is in use by {who} since {self.started} (pid {self.holder.pid} on "
                f"{self.holder.host}, last heartbeat {self.heartbeat})")
        if not self.holder.local():
            text += (f"; if that run is no longer running, release its lease: usine pay lease --ledger {path} "
                     f"--release {self.run if self.run is not None else 0}")
        return text


def read_lease(db: sqlite3.Connection) -> Lease | None:
    row = db.execute("SELECT run, pid, host, boot, process_start, started, heartbeat, token FROM lease "
                     "WHERE id = 1").fetchone()
    if row is None:
        return None
    run, pid, host, boot, started_at, started, heartbeat, token = row
    return Lease(run, Holder(pid, host, boot, started_at), started, heartbeat, token)


def peek(path: Path) -> Lease | None:
    """The lease as the main database file holds it, read without locks, WAL or side effects (best effort)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            return read_lease(db)
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None


def refuse_other_names(path: Path) -> None:
    """LedgerBusy when the ledger file has several names (hard links): each would get its own WAL."""
    links = os.stat(path).st_nlink
    if links > 1:
        holder = peek(path)
        busy = f"{holder.describe(path)}; and the " if holder is not None else "the "
        raise LedgerBusy(f"{busy}ledger file {path} has {links} names (hard links): SQLite keeps a write-ahead "
                         "log beside each name, so runs through two names would not see each other. Keep one "
                         f"name (find / -samefile {path}) and run again")


@dataclass(slots=True)
class Taken:
    """A lease this process holds."""

    token: str
    took_over: Lease | None


def acquire(db: sqlite3.Connection, path: Path) -> Taken:
    """Take the ledger's lease (a committed row), or LedgerBusy naming the run that holds it."""
    current = read_lease(db)  # a WAL reader: never waits
    if current is not None and not current.holder.gone():
        raise LedgerBusy(current.describe(path))
    me, token, now = Holder.me(), secrets.token_hex(16), _now()
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise LedgerBusy(f"ledger {path} is being written by another process ({exc})") from exc
    try:
        current = read_lease(db)
        if current is not None and not current.holder.gone():
            raise LedgerBusy(current.describe(path))
        db.execute("INSERT OR REPLACE INTO lease (id, token, run, pid, host, boot, process_start, started, heartbeat) "
                   "VALUES (1, ?, NULL, ?, ?, ?, ?, ?, ?)",
                   (token, me.pid, me.host, me.boot, me.started_at, now, now))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the lease in the main file too (what peek reads)
    return Taken(token, current)


def check_held(db: sqlite3.Connection, token: str, path: Path, *, heartbeat: bool) -> None:
    """Inside a write transaction: LedgerBusy if the lease is no longer ours; refresh the heartbeat if asked."""
    if heartbeat:
        held = db.execute("UPDATE lease SET heartbeat = ? WHERE id = 1 AND token = ?", (_now(), token)).rowcount
    else:
        held = db.execute("SELECT count(*) FROM lease WHERE id = 1 AND token = ?", (token,)).fetchone()[0]
    if not held:
        raise LedgerBusy(f"ledger {path}: this run's lease was released by someone else; stopping without "
                         "committing (run again)")


def release(db: sqlite3.Connection, token: str) -> None:
    """Give the lease back (nothing if it is no longer ours)."""
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM lease WHERE id = 1 AND token = ?", (token,))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def break_lease(db: sqlite3.Connection, path: Path, run: int) -> Lease:
    """Release the lease of run ``run`` on an operator's word that it is dead; refused if it is provably running."""
    db.execute("BEGIN IMMEDIATE")
    try:
        current = read_lease(db)
        if current is None:
            raise LedgerBusy(f"ledger {path} is not in use: no lease to release")
        if (current.run or 0) != run:
            raise LedgerBusy(f"{current.describe(path)}, not by run {run}: nothing released")
        if current.holder.local() and not current.holder.gone():
            raise LedgerBusy(f"{current.describe(path)}: that process is still running here; nothing released")
        db.execute("DELETE FROM lease WHERE id = 1")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return current
