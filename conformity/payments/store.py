"""The events a ledger has seen, kept columnar: one Parquet file per committed intake batch, beside the ledger.

The ledger (SQLite) stays the transactional record of installations, payments and batches; the
events it has seen (identity, content digest, outcome, where they were read, and the whole line of
each counted event, the candidates for a proof of use) are too many for a row-at-a-time database:
each intake batch writes them as one Parquet file in ``<ledger>.events/`` (folder 0700, files 0600),
fsync'd, then registers it in the ledger's ``event_files`` table in the same SQLite transaction as
the installations it changed. A file is part of the ledger only once registered: a file left by a
run killed before its commit is removed by the next run (which holds the lease).

An event is recorded once: intake joins each batch against what the store holds (a sorted array of
64-bit key hashes, then an exact look-up in the few files that may hold a match), so a re-presented
event is a duplicate or a conflict, never a second record. An event refused by an earlier run and
judged again to another outcome gets a newer row for the same (source, id): the row of the latest file wins
(:func:`recorded_events`); judged again to the same refusal, it gets none (``engine.UNCHANGED``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformity.files import private_dir

SUFFIX = ".events"
#: the columns of a store file, in order (``body``: the line as read, for counted events only)
COLUMNS = ("source", "id", "digest", "time_us", "outcome", "installation", "label", "run", "file", "line", "body",
           "seq")


def store_dir(ledger: Path) -> Path:
    """The folder of a ledger's event files (beside the real file when the ledger path is a symlink)."""
    real = Path(os.path.realpath(ledger))
    return real.with_name(real.name + SUFFIX)


def registered(db: sqlite3.Connection) -> list[tuple[int, str]]:
    """(seq, file name) of every registered event file, in order."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='event_files'").fetchone():
        return []
    return [(int(r[0]), str(r[1])) for r in db.execute("SELECT seq, name FROM event_files ORDER BY seq")]


class EventStore:
    """The event files of one ledger, opened by the run that holds its lease."""

    def __init__(self, ledger: Path, db: sqlite3.Connection):
        self.dir = store_dir(ledger)
        self.db = db
        private_dir(self.dir)

    def files(self) -> list[Path]:
        return [self.dir / name for _, name in registered(self.db)]

    def remove_unregistered(self) -> list[str]:
        """Delete files no commit registered (a run killed between writing one and its commit)."""
        known = {name for _, name in registered(self.db)}
        removed = []
        for path in sorted(self.dir.iterdir()):
            if path.name not in known:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(path.name)
        return removed

    def next_seq(self) -> int:
        row = self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM event_files").fetchone()
        return int(row[0])

    def register(self, seq: int, run: int, name: str, rows: int, new_events: int) -> None:
        """Record a written file as part of the ledger (inside the caller's transaction)."""
        self.db.execute("INSERT INTO event_files (seq, run, name, rows, new_events) VALUES (?, ?, ?, ?, ?)",
                        (seq, run, name, rows, new_events))

    def count(self) -> int:
        """Events recorded (each once, whatever the number of times it was judged)."""
        return int(self.db.execute("SELECT coalesce(sum(new_events), 0) FROM event_files").fetchone()[0])


def finish_file(tmp: Path, final: Path) -> None:
    """Make a written file durable and put it in place (fsync, 0600, rename, fsync the folder)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o600)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    dfd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def sql_literal(value: str | Path) -> str:
    """A DuckDB string literal (a value, a file path)."""
    return "'" + str(value).replace("'", "''") + "'"


def parquet_list(paths: Iterable[Path]) -> str:
    """A DuckDB list literal of file paths."""
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"


def recorded_events(ledger: Path) -> list[tuple[Any, ...]]:
    """Every event a ledger recorded, as it stands: (source, id, digest, time_us, outcome), sorted."""
    import duckdb

    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        names = registered(db)
    finally:
        db.close()
    if not names:
        return []
    folder = store_dir(ledger)
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT source, id, arg_max(digest, seq), arg_max(time_us, seq), arg_max(outcome, seq) "
            f"FROM read_parquet({parquet_list(folder / n for _, n in names)}) GROUP BY source, id "
            "ORDER BY source, id").fetchall()
    finally:
        con.close()
    return [(s, i, bytes(d), t, o) for s, i, d, t, o in rows]


def adopt_legacy_events(store: EventStore, db: sqlite3.Connection, run: int) -> int:
    """Move the events of a ledger written before the event store (schema 1-2: rows of ``events``, the
    bodies of counted ones in ``candidates``) into one registered store file; how many (one transaction)."""
    import duckdb
    import pyarrow as pa

    n = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    if not n:
        return 0
    rows = db.execute(
        "SELECT e.source, e.id, e.digest, e.time_us, e.outcome, e.installation, e.label, e.run, e.file, e.line, "
        "c.body FROM events e LEFT JOIN candidates c ON c.installation = e.installation AND c.time_us = e.time_us "
        "AND c.source = e.source AND c.id = e.id AND e.outcome = 'counted' ORDER BY e.run, e.file, e.line").fetchall()
    types = (pa.string(), pa.string(), pa.binary(), pa.int64(), pa.string(), pa.int64(), pa.int64(), pa.int64(),
             pa.int64(), pa.int64(), pa.string())
    names = COLUMNS[:-1]  # seq: the store file's number, added below
    table = pa.table({c: pa.array([r[i] for r in rows], type=t) for i, (c, t) in enumerate(zip(names, types, strict=True))})
    seq = store.next_seq()
    final = store.dir / f"{run:06d}-{seq:08d}-legacy.parquet"
    tmp = final.with_name("." + final.name + ".tmp")
    con = duckdb.connect()
    try:
        con.register("legacy", table)
        con.execute(f"COPY (SELECT *, {seq}::BIGINT AS seq FROM legacy) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' "
                    "(FORMAT parquet)")
    finally:
        con.close()
    finish_file(tmp, final)
    store.register(seq, run, final.name, n, n)
    db.execute("DELETE FROM candidates")
    db.execute("DELETE FROM events")
    return n
