"""The payment ledger in SQLite: runs, installations, payments with their proof, batches; events beside it.

Nothing paid twice is enforced by the schema, not only by code: one payment per installation
(``UNIQUE (installation)`` and ``UNIQUE (wave, software_id, site_id)``), an event proves at most one
payment (``payment_events UNIQUE (source, id)``), and triggers refuse to delete or change a payment or
to order it twice. Nothing is lost: every write is inside a transaction (``BEGIN IMMEDIATE`` …
``COMMIT``, ``synchronous=FULL``), and a run holds the ledger's lease (a row of the database itself,
``conformity.payments.lease``) so that two runs never interleave, whatever path they opened it by.
The ledger holds IBANs: its folder is created 0700 and its files (database, WAL, shared memory) 0600
from the start.

Tables: ``installations`` (per-installation state: fixed attributes, status, counted events, best
window up to the threshold — exact while pending, the threshold once qualified —, the key of the event
completing its proof), ``payments`` and ``payment_events`` (each payment and the events that proved it, as
received), ``batches`` (pain.001 messages), ``runs``, ``files``,
``labels`` (the verified labels that covered counted events), ``event_files`` (the columnar files of
the events seen, ``conformity.payments.store``: registered in the same transaction as the
installations each intake batch changed). ``events`` and ``candidates`` are the row-per-event
tables of schema versions 1-2, no longer written. The schema is versioned (``meta.schema_version``)
and migrated forward.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from conformity.db.connection import sqlite_tables
from conformity.errors import InputError, UsineError
from conformity.files import create_private, private_dir, refuse_link_to_nothing
from conformity.payments import lease
from conformity.payments.labelbook import ReliedOn, RevocationKey
from conformity.payments.lease import LedgerBusy
from conformity.payments.ledger_schema import MIGRATIONS, SCHEMA_VERSION
from conformity.payments.proof import EventKey

__all__ = ["CAP_REACHED", "PAID", "PENDING", "QUALIFIED", "Due", "Ledger", "LedgerBusy"]

PENDING, QUALIFIED, CAP_REACHED, PAID = "pending", "qualified", "cap-reached", "paid"
CACHE_KIB = 16 * 1024  # SQLite page cache (anonymous memory: part of a run's peak RSS; the ledger's hot pages fit)
MMAP_BYTES = 1 << 30  # pages read through a memory map (file-backed, reclaimable)
CHECKPOINT_PAGES = 16_384  # WAL pages between checkpoints: random-key inserts touch many pages
BUSY_SECONDS = 30.0  # how long a statement waits for another connection's write transaction


@dataclass(frozen=True, slots=True)
class Due:
    """An installation whose proof of use is met and that is not paid yet."""

    rowid: int
    software_id: str
    site_id: str
    vendor_id: str
    category: str
    site_size: str
    software_name: str
    site_name: str
    status: str
    completion: EventKey


class Ledger:
    """One SQLite ledger, opened and locked for one run (use as a context manager)."""

    def __init__(self, path: Path):
        self.path = refuse_link_to_nothing(path, "ledger")
        real = Path(os.path.realpath(path))  # a symlink's target: SQLite's WAL is beside the real file
        try:  # another program's database, or not a database: refused before its mode and journal are changed
            tables = sqlite_tables(real)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a usable SQLite ledger: {exc}", file=path) from exc
        if tables and "meta" not in tables:
            raise InputError("this SQLite file is not a usine payment ledger", file=path)
        try:
            private_dir(real.parent)
            create_private(real)  # SQLite creates the WAL and shared-memory files with the database's mode
            for f in (real, Path(f"{real}-wal"), Path(f"{real}-shm")):
                if f.exists() and f.stat().st_mode & 0o077:
                    f.chmod(0o600)  # a ledger from before: readable by others until now
            lease.refuse_other_names(real)
        except OSError as exc:
            raise InputError(f"cannot create or open the ledger: {exc.strerror or exc}", file=path) from exc
        self.db = sqlite3.connect(real, isolation_level=None, timeout=BUSY_SECONDS)
        self._token = ""
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self.db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self.db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            self._migrate()
            taken = lease.acquire(self.db, path)
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise LedgerBusy(f"ledger {path} is being written by another process ({exc})") from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise InputError(f"not a usable SQLite ledger: {exc}", file=path) from exc
            raise
        self._token = taken.token
        #: the lease of a run that died (provably: on this host, no such process), taken over by this one
        self.took_over: lease.Lease | None = taken.took_over
        self._heartbeat = time.monotonic()
        self._files: dict[int, str] = {}
        self._in_tx = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Roll back what is not committed, give the lease back, close."""
        try:
            if self._in_tx:
                self.db.execute("ROLLBACK")
                self._in_tx = False
            if self._token:
                token, self._token = self._token, ""
                with contextlib.suppress(sqlite3.Error):  # kept: the next run takes it over (this process is gone)
                    lease.release(self.db, token)
        finally:
            self.db.close()

    def _version(self) -> int:
        """The ledger's schema version (0: an empty file); InputError for another SQLite database."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone():
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            return int(row[0]) if row else 0
        if self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise InputError("this SQLite file is not a usine payment ledger", file=self.path)
        return 0

    def _migrate(self) -> None:
        """Apply the missing migrations in order, each in its own transaction (another process may race us)."""
        while (version := self._version()) < SCHEMA_VERSION:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if self._version() != version:  # migrated by another process meanwhile
                    self.db.execute("ROLLBACK")
                    continue
                target = version + 1
                for statement in MIGRATIONS[target].split(";\n"):
                    if statement.strip():
                        self.db.execute(statement)
                if target == 1:
                    self.db.execute("INSERT INTO meta VALUES ('ledger_id', ?)", (secrets.token_hex(8),))
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(target),))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        if version > SCHEMA_VERSION:
            raise InputError(f"ledger schema version {version} is newer than this usine knows ({SCHEMA_VERSION})",
                             file=self.path)

    def meta(self, key: str) -> str:
        return self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()[0]

    def begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def commit(self) -> None:
        """Flush the installation cache and commit what was written since the last commit (if the lease is ours)."""
        if self._in_tx:
            beat = time.monotonic() - self._heartbeat >= lease.HEARTBEAT_SECONDS
            lease.check_held(self.db, self._token, self.path, heartbeat=beat)
            if beat:
                self._heartbeat = time.monotonic()
            self.db.execute("COMMIT")
            self._in_tx = False

    # ------------------------------------------------------------------ runs, files, labels
    def begin_run(self, wave: str, as_of: str, started: str, inputs: str) -> int:
        self.begin()
        run = self.db.execute("INSERT INTO runs (wave, as_of, started, inputs) VALUES (?, ?, ?, ?)",
                              (wave, as_of, started, inputs)).lastrowid
        self.db.execute("UPDATE lease SET run = ? WHERE id = 1 AND token = ?", (run, self._token))
        self.commit()
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the run's id in the main file too (see lease.peek)
        return int(run or 0)

    def finish_run(self, run: int, finished: str, summary: str) -> None:
        self.begin()
        self.db.execute("UPDATE runs SET finished=?, summary=? WHERE id=?", (finished, summary, run))
        self.commit()

    def revocation_lists(self) -> list[ReliedOn]:
        """What each run recorded of the revocation list it relied on (``begin_run``'s inputs), in run order."""
        return [ReliedOn(int(r[0]), str(r[1]), None if r[2] is None else str(r[2]),
                         r[3] if isinstance(r[3], int) else None, _revocation_keys(r[4], int(r[0]), self.path))
                for r in self.db.execute(
                    "SELECT id, json_extract(inputs, '$.revocations.issued') AS issued, "
                    "json_extract(inputs, '$.revocations.sha256'), json_extract(inputs, '$.revocations.revocations'), "
                    "json_extract(inputs, '$.revocations.entries') FROM runs WHERE issued IS NOT NULL ORDER BY id")]

    def unfinished_runs(self, before: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM runs WHERE finished IS NULL AND id < ? ORDER BY id",
                                              (before,))]

    def add_file(self, run: int, path: str) -> int:
        self.begin()
        self.db.execute("INSERT OR IGNORE INTO files (run, path) VALUES (?, ?)", (run, path))
        fid = int(self.db.execute("SELECT id FROM files WHERE run=? AND path=?", (run, path)).fetchone()[0])
        self._files[fid] = path
        return fid

    def file_path(self, fid: int) -> str:
        if fid not in self._files:
            row = self.db.execute("SELECT path FROM files WHERE id=?", (fid,)).fetchone()
            self._files[fid] = row[0] if row else "?"
        return self._files[fid]

    def add_label(self, label_id: str, vendor_id: str, vendor_name: str, software_id: str, software_name: str,
                  doc: str) -> int:
        """The ledger's row id of a verified label (recorded once, as first seen)."""
        self.begin()
        self.db.execute("INSERT INTO labels (label_id, vendor_id, vendor_name, software_id, software_name, doc) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (label_id) DO NOTHING",
                        (label_id, vendor_id, vendor_name, software_id, software_name, doc))
        return int(self.db.execute("SELECT id FROM labels WHERE label_id=?", (label_id,)).fetchone()[0])

    # ------------------------------------------------------------------ installations (in bulk, for intake)
    def label_names(self) -> dict[int, tuple[str, str]]:
        """Row id → (label id, vendor name) of every recorded label."""
        return {int(r[0]): (r[1], r[2]) for r in self.db.execute("SELECT id, label_id, vendor_name FROM labels")}

    def wave_installations(self, wave: str) -> Any:
        """The wave's installations as an Arrow table (for the columnar engine)."""
        import pyarrow as pa

        cols = ("id", "sw_id", "site_id", "vendor", "category", "site_size", "status", "best", "q_time", "q_source",
                "q_id")
        rows = self.db.execute(
            "SELECT id, software_id, site_id, vendor_id, category, site_size, status, best, q_time, q_source, q_id "
            "FROM installations WHERE wave=?", (wave,)).fetchall()
        types = (pa.int64(), pa.string(), pa.string(), pa.string(), pa.string(), pa.string(), pa.string(), pa.int64(),
                 pa.int64(), pa.string(), pa.string())
        return pa.table({c: pa.array([r[i] for r in rows], type=t) for i, (c, t) in enumerate(zip(cols, types,
                                                                                                 strict=True))})

    def create_installations(self, wave: str, rows: list[tuple[Any, ...]], run: int) -> list[int]:
        """New installations (software, site, installation ref, vendor, category, size, software and site names):
        their row ids, in order (inside the current transaction)."""
        if not rows:
            return []
        after = int(self.db.execute("SELECT coalesce(max(id), 0) FROM installations").fetchone()[0])
        self.db.executemany(
            "INSERT INTO installations (wave, software_id, site_id, installation_ref, vendor_id, category, "
            "site_size, software_name, site_name, status, first_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            [(wave, *row, run) for row in rows])
        # the writer holds the transaction (BEGIN IMMEDIATE): the new rows are the ids after ``after``, in order
        created = {(sw, site): int(i) for i, sw, site in self.db.execute(
            "SELECT id, software_id, site_id FROM installations WHERE id > ? AND wave = ?", (after, wave))}
        return [created[(row[0], row[1])] for row in rows]

    def update_installations(self, rows: list[tuple[Any, ...]]) -> None:
        """(status, best, q_time, q_source, q_id, id) of installations whose best window or completion changed."""
        self.db.executemany("UPDATE installations SET status=?, best=?, q_time=?, q_source=?, q_id=? WHERE id=?", rows)

    def installation_counts(self) -> Any:
        """(id, counted) of every installation, as an Arrow table (``Engine.count_changes``)."""
        import pyarrow as pa

        rows = self.db.execute("SELECT id, counted FROM installations").fetchall()
        return pa.table({"id": pa.array([r[0] for r in rows], pa.int64()),
                         "counted": pa.array([r[1] for r in rows], pa.int64())})

    def set_counts(self, rows: list[tuple[int, int]]) -> None:
        """(counted, id): the number of counted events of installations, as the event store holds them."""
        self.db.executemany("UPDATE installations SET counted=? WHERE id=?", rows)

    # ------------------------------------------------------------------ settlement
    def due(self, wave: str, after: tuple[int, str, str, int], limit: int) -> list[Due]:
        """Installations qualified or refused for the cap, by completion key, after ``after``."""
        rows = self.db.execute(
            "SELECT id, software_id, site_id, vendor_id, category, site_size, software_name, site_name, status, "
            "q_time, q_source, q_id FROM installations WHERE wave=? AND status IN ('qualified', 'cap-reached') "
            "AND (q_time, q_source, q_id, id) > (?, ?, ?, ?) ORDER BY q_time, q_source, q_id, id LIMIT ?",
            (wave, *after, limit)).fetchall()
        return [Due(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], (r[9], r[10], r[11])) for r in rows]

    def software_paid_cents(self, wave: str, software_id: str) -> int:
        row = self.db.execute("SELECT COALESCE(SUM(amount_cents), 0) FROM payments WHERE wave=? AND software_id=?",
                              (wave, software_id)).fetchone()
        return int(row[0])

    def set_status(self, installation: int, status: str) -> None:
        self.db.execute("UPDATE installations SET status=? WHERE id=?", (status, installation))

    def pay(self, wave: str, due: Due, amount_cents: int, currency: str, n: int, span_us: int, run: int,
            created: str, proof: list[tuple[Any, ...]]) -> int:
        """Record one payment with the ``n`` events ending at the completion that prove it.

        ``proof``: (time, source, id, label id, vendor name, body) of those events in key order, from the
        event store (``engine.Engine.proofs``); checked again here against the installation's completion.
        """
        if len(proof) != n or proof[-1][0] - proof[0][0] > span_us or \
                (proof[-1][0], proof[-1][1], proof[-1][2]) != due.completion:
            raise UsineError(f"ledger {self.path}: the proof of installation {due.rowid} cannot be rebuilt "
                             "(ledger or its event files edited by hand?)")
        label_id, vendor_name = proof[-1][3], proof[-1][4]
        payment = int(self.db.execute(
            "INSERT INTO payments (installation, wave, software_id, site_id, vendor_id, vendor_name, software_name, "
            "site_name, category, site_size, amount_cents, currency, label_id, qualified_time, run, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (due.rowid, wave, due.software_id, due.site_id, due.vendor_id, vendor_name, due.software_name,
             due.site_name, due.category, due.site_size, amount_cents, currency, label_id, due.completion[0], run,
             created)).lastrowid or 0)
        self.db.executemany("INSERT INTO payment_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(payment, i, p[1], p[2], p[0], p[3], p[5]) for i, p in enumerate(proof)])
        self.set_status(due.rowid, PAID)
        return payment

    # ------------------------------------------------------------------ orders
    def unbatched_vendors(self, wave: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT vendor_id FROM payments WHERE wave=? AND batch IS NULL ORDER BY vendor_id", (wave,))]

    def open_batch(self, wave: str, run: int, created: str, execution_date: str, payer: str,
                   creditors: dict[str, tuple[str, str, str]]) -> int | None:
        """Put every unordered payment of a vendor with bank details into a new batch; None if there is none."""
        self.begin()
        ids = [r[0] for r in self.db.execute(
            "SELECT id, vendor_id FROM payments WHERE wave=? AND batch IS NULL ORDER BY id", (wave,))
            if r[1] in creditors]
        if not ids:
            self.commit()
            return None
        total = 0
        ledger_id = self.meta("ledger_id")
        batch = int(self.db.execute(
            "INSERT INTO batches (wave, msg_id, run, created, execution_date, payer, transactions, total_cents) "
            "VALUES (?, ?, ?, ?, ?, ?, 1, 1)",
            (wave, f"pending-{secrets.token_hex(8)}", run, created, execution_date, payer)).lastrowid or 0)
        for pid in ids:
            vendor, amount = self.db.execute("SELECT vendor_id, amount_cents FROM payments WHERE id=?",
                                             (pid,)).fetchone()
            name, iban, bic = creditors[vendor]
            self.db.execute("UPDATE payments SET batch=?, creditor_name=?, iban=?, bic=? WHERE id=?",
                            (batch, name, iban, bic, pid))
            total += amount
        self.db.execute("UPDATE batches SET msg_id=?, transactions=?, total_cents=? WHERE id=?",
                        (f"USINE-{ledger_id}-{batch:06d}", len(ids), total, batch))
        self.commit()
        return batch

    def ordered_accounts(self) -> dict[str, tuple[str, str]]:
        """Per vendor, the IBAN its latest order went to and that batch's message id (every wave)."""
        return {vendor: (iban, msg_id) for vendor, iban, msg_id in self.db.execute(
            "SELECT p.vendor_id, MIN(p.iban), MIN(b.msg_id) FROM payments p JOIN batches b ON b.id = p.batch "
            "JOIN (SELECT vendor_id, MAX(batch) AS batch FROM payments WHERE batch IS NOT NULL GROUP BY vendor_id) l "
            "ON l.vendor_id = p.vendor_id AND l.batch = p.batch GROUP BY p.vendor_id")}

    def unwritten_batches(self, wave: str) -> list[dict[str, Any]]:
        cols = ("id", "wave", "msg_id", "run", "created", "execution_date", "payer", "transactions", "total_cents")
        rows = self.db.execute(f"SELECT {', '.join(cols)} FROM batches WHERE wave=? AND written IS NULL ORDER BY id",
                               (wave,)).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def mark_written(self, batches: Sequence[int], when: str) -> None:
        """The batches' files are written: one transaction (each is written again by the next run until then)."""
        self.begin()
        self.db.executemany("UPDATE batches SET written=? WHERE id=?", [(when, b) for b in batches])
        self.commit()

    PAYMENT_COLUMNS = ("id", "wave", "software_id", "software_name", "site_id", "site_name", "vendor_id",
                       "vendor_name", "category", "site_size", "amount_cents", "currency", "label_id",
                       "qualified_time", "run", "created", "batch", "creditor_name", "iban", "bic")

    def payments(self, where: str, params: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
        """Payments matching a fixed WHERE clause of this module's callers, by id."""
        cols = ", ".join(f"p.{c}" for c in self.PAYMENT_COLUMNS)
        cur = self.db.execute(f"SELECT {cols}, b.msg_id FROM payments p LEFT JOIN batches b ON b.id = p.batch "
                              f"WHERE {where} ORDER BY p.id", params)
        for row in cur:
            yield dict(zip(self.PAYMENT_COLUMNS + ("msg_id",), row, strict=True))

    def proof_events(self, payment: int) -> list[dict[str, Any]]:
        return [{"source": r[0], "id": r[1], "time_us": r[2], "label_id": r[3], "body": r[4]} for r in self.db.execute(
            "SELECT source, id, time_us, label_id, body FROM payment_events WHERE payment=? ORDER BY position",
            (payment,))]

    def vendor_totals(self, wave: str, run: int) -> list[tuple[Any, ...]]:
        """Per vendor: name, currency, paid this run (count, cents), paid in all (count, cents), held (count, cents)."""
        return self.db.execute(
            "SELECT vendor_id, MIN(vendor_name), currency, "
            "SUM(run = ?), SUM(CASE WHEN run = ? THEN amount_cents ELSE 0 END), COUNT(*), SUM(amount_cents), "
            "SUM(batch IS NULL), SUM(CASE WHEN batch IS NULL THEN amount_cents ELSE 0 END) "
            "FROM payments WHERE wave=? GROUP BY vendor_id, currency ORDER BY vendor_id, currency",
            (run, run, wave)).fetchall()

    def unpaid(self, wave: str) -> Iterator[tuple[Any, ...]]:
        """Installations of a wave not paid: id, software, site, vendor, category, size, status, counted, best."""
        return self.db.execute(
            "SELECT id, software_id, site_id, vendor_id, category, site_size, status, counted, best "
            "FROM installations WHERE wave=? AND status != 'paid' ORDER BY software_id, site_id", (wave,))

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for summaries and tests)."""
        counts = {"events": int(self.db.execute("SELECT coalesce(sum(new_events), 0) FROM event_files").fetchone()[0])}
        counts.update({t: int(self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                       for t in ("installations", "payments", "payment_events", "batches")})
        return counts


def _revocation_keys(recorded: Any, run: int, path: Path) -> tuple[RevocationKey, ...] | None:
    """The revocations a run recorded of its list (JSON text: a list of 5 strings each), None when it recorded none
    (a version before they were recorded)."""
    if recorded is None:
        return None
    try:
        keys = json.loads(recorded)
        if not isinstance(keys, list) or not all(isinstance(k, list) and len(k) == 5 and
                                                 all(isinstance(x, str) for x in k) for k in keys):
            raise ValueError("not a list of 5 strings each")
    except ValueError as exc:
        raise UsineError(f"ledger {path}: run {run} recorded its revocation list's entries wrongly ({exc}): the ledger "
                         "was edited outside usine") from None
    return tuple((k[0], k[1], k[2], k[3], k[4]) for k in keys)


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """What a ledger holds, per wave, and the run holding it (``usine pay status``)."""

    runs: int
    unfinished: int
    #: (wave, status, count) of installations
    installations: list[tuple[str, str, int]]
    #: (wave, currency, count, cents, held) of payments
    payments: list[tuple[str, str, int, int, int]]
    lease: lease.Lease | None


def ledger_status(path: Path) -> LedgerStatus:
    """A ledger's status, read-only; InputError when the file is not a usine payment ledger."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        installations = db.execute("SELECT wave, status, count(*) FROM installations GROUP BY wave, status "
                                   "ORDER BY wave, status").fetchall()
        payments = db.execute("SELECT wave, currency, count(*), sum(amount_cents), sum(batch IS NULL) FROM payments "
                              "GROUP BY wave, currency ORDER BY wave").fetchall()
        runs, unfinished = db.execute("SELECT count(*), sum(finished IS NULL) FROM runs").fetchone()
        has_lease = db.execute("SELECT 1 FROM sqlite_master WHERE name='lease'").fetchone() is not None
        held = lease.read_lease(db) if has_lease else None
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a usine payment ledger: {exc}", file=path) from exc
    finally:
        db.close()
    return LedgerStatus(runs, unfinished or 0, [tuple(r) for r in installations], [tuple(r) for r in payments], held)


def release_lease(path: Path, run: int) -> lease.Lease:
    """Release the lease of run ``run`` on an operator's word that it is dead (:func:`lease.break_lease`)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        return lease.break_lease(db, path, run)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a usine payment ledger: {exc}", file=path) from exc
    finally:
        db.close()
