"""The SQLite store's log is copied back by its own thread (``sandbox.wal``), not by a commit on the event loop:
the log stays bounded though the store's connection only checkpoints past a 64 MiB backstop, nothing written is
lost, a log nothing was written to is left alone, and closing the store ends the thread."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.store import Store
from sandbox.wal import BACKSTOP_PAGES, CHECKPOINT_AFTER_BYTES, Checkpointer


def _wal_bytes(path: Path) -> int:
    return os.stat(f"{path}-wal").st_size


def _eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _settled(store: Store) -> int:
    """The checkpoints made once they stop: none for four looks in a row (within 10 s, else the test fails)."""
    seen = [store._checkpointer.checkpoints]

    def still() -> bool:
        time.sleep(0.8)
        seen.append(store._checkpointer.checkpoints)
        return seen[-1] == seen[-2]
    assert _eventually(still), f"the thread kept checkpointing a log no one wrote to: {seen}"
    return seen[-1]


def test_the_log_is_checkpointed_by_the_thread_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    store = Store(path)
    try:
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        document = "x" * 60_000
        for n in range(400):  # ≈ 24 MB written: 6x the mark, far below the backstop's 64 MiB
            store.put_record("docs", "ses_a", str(n), {"n": n, "document": document})
            if n % 20 == 19:
                time.sleep(0.1)  # requests arrive over time: the thread looks every 0.2 s
        time.sleep(0.5)
        assert store._checkpointer.checkpoints >= 2
        assert _wal_bytes(path) < 3 * CHECKPOINT_AFTER_BYTES  # reused from its start once copied back
        assert [r["n"] for r in store.list_records("docs", "ses_a")] == list(range(400))
        done = _settled(store)  # a log nothing was written to since it was all copied back: left alone
        store.put_record("docs", "ses_a", "late", {"n": -1})  # written again: copied back at a next look
        assert _eventually(lambda: store._checkpointer.checkpoints > done)
    finally:
        store.close()
    assert not store._checkpointer.running
    reopened = sqlite3.connect(path)  # everything is in the database file or its log: nothing lost
    assert reopened.execute("SELECT count(*) FROM records").fetchone()[0] == 401
    reopened.close()


def test_a_small_log_is_left_alone_and_stop_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    checkpointer = Checkpointer(path, every=0.01)
    time.sleep(0.1)
    assert checkpointer.checkpoints == 0 and checkpointer.running
    checkpointer.stop()
    assert not checkpointer.running
    db.close()
