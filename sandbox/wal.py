"""SQLite's write-ahead log copied back into the database file by a thread of its own, off the request path.

In WAL mode a commit appends pages to the log; every ``wal_autocheckpoint`` pages (1,000 by default) the commit
that crosses the mark also copies the log back into the database and syncs it to disk. The sandbox's SQLite calls
run on the event loop, so that copy stalled every request in flight: at 250 concurrent vendor sessions it was
≈ 25 ms of the p95 latency (measured with and without it, ``benchmarks/sandbox_throughput.py``). Here a daemon
thread, on its own connection, runs a ``PASSIVE`` checkpoint (it never waits for, nor blocks, a reader or a writer)
once the log has grown past :data:`CHECKPOINT_AFTER_BYTES`, then at each look (:data:`LOOK_EVERY`) that finds it
written since it was last all copied back (a log is reused from its start, keeping its size); the store's
connection keeps an automatic checkpoint only as a backstop (:data:`BACKSTOP_PAGES`), should the thread fall
behind. What is durable when is unchanged: a commit is in the log before its request is answered, as before.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

#: the log's size past which the thread copies it back (SQLite's own default mark: 1,000 pages of 4 KiB)
CHECKPOINT_AFTER_BYTES = 4 * 1024 * 1024
#: the store's connection checkpoints itself only when the log holds this many pages (64 MiB of 4 KiB pages)
BACKSTOP_PAGES = 16384
#: how often the thread looks at the log's size, seconds
LOOK_EVERY = 0.2
#: checkpoints run one after the other while commits keep adding to the log, at most
PASSES = 6


class Checkpointer:
    """The thread that checkpoints ``database``'s log (started at once; :meth:`stop` ends it)."""

    def __init__(self, database: Path, *, after_bytes: int = CHECKPOINT_AFTER_BYTES, every: float = LOOK_EVERY):
        self._wal = Path(f"{database}-wal")
        self._database, self._after, self._every = database, after_bytes, every
        self._stopped = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint {database.name}", daemon=True)
        self._thread.start()

    def _log(self) -> tuple[int, int]:
        """The log file's size and modification time (it keeps its size when a commit starts it again)."""
        try:
            found = os.stat(self._wal)
        except FileNotFoundError:
            return 0, 0
        return found.st_size, found.st_mtime_ns

    def _run(self) -> None:
        db = sqlite3.connect(str(self._database), check_same_thread=False, isolation_level=None)
        copied: tuple[int, int] = (0, 0)  # the log as it was when it was last all copied back
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            while not self._stopped.wait(self._every):
                log = self._log()
                if log[0] >= self._after and log != copied and self._catch_up(db):
                    copied = self._log()
        finally:
            db.close()

    def _catch_up(self, db: sqlite3.Connection) -> bool:
        """Copy the log back until a pass finds it all copied and nothing added since the pass before (the frames
        committed during a pass are few, so each is quicker), in at most :data:`PASSES` passes: the next commit then
        starts the log again from its beginning. (A pass reports the log as it found it: frames committed while it
        copied are not in its count, and a log not all copied is never started again.) Whether it is all copied."""
        before = -1
        for _ in range(PASSES):
            try:
                # (all rows fetched: a statement left unfinished would hold a read lock, and the log never restart)
                busy, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
            except sqlite3.Error:
                return False  # another checkpoint runs (the backstop): the next look tries again
            self.checkpoints += 1
            if busy:
                return False
            if logged == before and copied >= logged:
                return True
            before = logged
        return False

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
