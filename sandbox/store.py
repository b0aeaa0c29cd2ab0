"""The sandbox's state: sessions, tokens, traces, service records, installations.

SQLite (:class:`Store`, the default, one process): one connection guarded by a lock (SQLite serialises writers
anyway); WAL journal so readers never block. PostgreSQL (:class:`PostgresStore`, ``--database postgresql://…``):
the store several worker processes share, every read-modify-write one transaction under a lock scoped to what it
changes (a session, a trace, a collection), so a vendor's requests may reach any worker.
Every service record is scoped: a test session id, or ``prod`` for installations.
No secret is stored in clear: tokens are kept as their SHA-256 (``sandbox.credentials``) with a
display prefix, and the database is created 0600 in a 0700 folder (SQLite gives its WAL and
shared-memory files the database's mode).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from conformity.files import create_private, private_dir
from sandbox.credentials import display_prefix, secret_hash
from sandbox.parsed import ParsedTexts, parse_json
from sandbox.wal import BACKSTOP_PAGES, Checkpointer

TOKENS_TABLE = """CREATE TABLE IF NOT EXISTS tokens (token_sha256 TEXT PRIMARY KEY, prefix TEXT NOT NULL,
    kind TEXT NOT NULL, scope TEXT NOT NULL, expires REAL NOT NULL, data TEXT NOT NULL)"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, data TEXT NOT NULL);
{TOKENS_TABLE};
CREATE TABLE IF NOT EXISTS exchanges (session_id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (session_id, seq));
CREATE TABLE IF NOT EXISTS records (collection TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL,
    seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (collection, scope, key));
CREATE INDEX IF NOT EXISTS records_by_seq ON records (collection, scope, seq);
CREATE TABLE IF NOT EXISTS installations (id TEXT PRIMARY KEY, token_hash TEXT UNIQUE NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS held (session_id TEXT NOT NULL, id TEXT NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (session_id, id));
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, binding TEXT NOT NULL, wave TEXT NOT NULL,
    category TEXT NOT NULL, attempt INTEGER NOT NULL, data TEXT NOT NULL, UNIQUE (binding, wave, category, attempt));
CREATE TABLE IF NOT EXISTS run_scenarios (run_id TEXT NOT NULL, scenario TEXT NOT NULL, session_id TEXT NOT NULL,
    PRIMARY KEY (run_id, scenario));
CREATE TABLE IF NOT EXISTS run_finishes (run_id TEXT PRIMARY KEY, finished TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS session_owners (session_id TEXT PRIMARY KEY, binding TEXT NOT NULL,
    live_until REAL NOT NULL);
CREATE INDEX IF NOT EXISTS session_owners_by_binding ON session_owners (binding, live_until);
CREATE TABLE IF NOT EXISTS recorded (scope TEXT PRIMARY KEY, bytes BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS run_marks (run_id TEXT PRIMARY KEY, binding TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS run_marks_by_binding ON run_marks (binding, at);
CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created);
CREATE INDEX IF NOT EXISTS tokens_by_scope ON tokens (scope);
CREATE INDEX IF NOT EXISTS records_by_scope ON records (scope);
"""
#: what each session makes the sandbox keep — its trace's exchanges, its service records (documents, messages…) —
#: counted in bytes by the store as it writes them (``recorded``; a record replaced counts its new size), never by a
#: statement of the sandbox's: the per-session bound costs no round trip (:meth:`Store.arrival` reads the count with
#: the session). The production role's records (scope ``prod``, or ``prod:`` and an installation's id) belong to no
#: session: not counted (the first triggers, ``records_recorded`` and ``records_rerecorded``, counted the second kind, a
#: count no session has and no sweep deletes: dropped, their counts too, as a store of theirs opens).
PRODUCTION_SCOPE = "({scope} = 'prod' OR {scope} LIKE 'prod:%')"
#: the counts of a store whose sessions recorded before the triggers counted (a store of the schema step before the
#: bounds, upgraded with sessions open): each session's exchanges and records counted whole once, as the triggers
#: are created — else a session open across the upgrade counted nothing of what it kept, and on PostgreSQL a record
#: of it replaced by a smaller one counted the difference from nothing, a negative count offsetting its vendor's other
#: sessions. ``{length}``: each engine's byte length of a stored text.
RECOUNT = f"""INSERT INTO recorded (scope, bytes) SELECT scope, SUM(b) FROM (
    SELECT session_id AS scope, {{length}} AS b FROM exchanges
    UNION ALL SELECT scope, {{length}} AS b FROM records WHERE NOT {PRODUCTION_SCOPE.format(scope="scope")}) AS kept
    WHERE true GROUP BY scope ON CONFLICT (scope) DO UPDATE SET bytes = excluded.bytes"""
SQLITE_RECOUNT = RECOUNT.replace("{length}", "length(CAST(data AS BLOB))")
SQLITE_RECORDED = f"""
CREATE TRIGGER IF NOT EXISTS exchanges_recorded AFTER INSERT ON exchanges BEGIN
    INSERT INTO recorded (scope, bytes) VALUES (NEW.session_id, length(CAST(NEW.data AS BLOB)))
    ON CONFLICT (scope) DO UPDATE SET bytes = recorded.bytes + excluded.bytes;
END;
DROP TRIGGER IF EXISTS records_recorded;
DROP TRIGGER IF EXISTS records_rerecorded;
DELETE FROM recorded WHERE {PRODUCTION_SCOPE.format(scope="scope")};
CREATE TRIGGER IF NOT EXISTS records_counted AFTER INSERT ON records
    WHEN NOT {PRODUCTION_SCOPE.format(scope="NEW.scope")} BEGIN
    INSERT INTO recorded (scope, bytes) VALUES (NEW.scope, length(CAST(NEW.data AS BLOB)))
    ON CONFLICT (scope) DO UPDATE SET bytes = recorded.bytes + excluded.bytes;
END;
CREATE TRIGGER IF NOT EXISTS records_recounted AFTER UPDATE OF data ON records
    WHEN NOT {PRODUCTION_SCOPE.format(scope="NEW.scope")} BEGIN
    UPDATE recorded SET bytes = bytes + length(CAST(NEW.data AS BLOB)) - length(CAST(OLD.data AS BLOB))
    WHERE scope = NEW.scope;
END;
"""
PG_RECORDED = f"""
CREATE OR REPLACE FUNCTION usine_recorded() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    what TEXT;
    grown BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'exchanges' THEN
        what := NEW.session_id;
    ELSE
        what := NEW.scope;
    END IF;
    IF TG_TABLE_NAME = 'records' AND {PRODUCTION_SCOPE.format(scope="what")} THEN
        RETURN NULL;
    END IF;
    grown := octet_length(NEW.data);
    IF TG_OP = 'UPDATE' THEN
        grown := grown - octet_length(OLD.data);
    END IF;
    -- a scope without a count yet starts from what is counted now, never below nothing (its earlier bytes were never
    -- counted: a count made negative would offset its vendor's other sessions); the upgrade counted every scope kept
    INSERT INTO recorded (scope, bytes) VALUES (what, GREATEST(grown, 0))
        ON CONFLICT (scope) DO UPDATE SET bytes = GREATEST(recorded.bytes + grown, 0);
    RETURN NULL;
END $$;
DELETE FROM recorded WHERE {PRODUCTION_SCOPE.format(scope="scope")};
DO $$ DECLARE
    upgrade BOOLEAN := NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exchanges_recorded');
BEGIN
    -- created once (a worker starting beside others serving takes no lock on the tables when they exist)
    IF upgrade THEN
        CREATE TRIGGER exchanges_recorded AFTER INSERT ON exchanges FOR EACH ROW EXECUTE FUNCTION usine_recorded();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'records_recorded') THEN
        CREATE TRIGGER records_recorded AFTER INSERT OR UPDATE OF data ON records FOR EACH ROW
            EXECUTE FUNCTION usine_recorded();
    END IF;
    IF upgrade THEN  -- after the triggers: their creation holds off every write until this transaction commits
        {RECOUNT.replace("{length}", "octet_length(data)")};
    END IF;
END $$;
"""
SCHEMA_VERSION = "2"
#: the SQLite connection's page cache, KiB (taken as it fills)
CACHE_KIB = 32 * 1024
#: a held answer older than this is a leftover (a process stopped while holding it), not a request still held
HELD_AT_MOST = 40.0
#: a record put: a new key goes after the collection's last, a known key keeps its place (both engines speak it)
PUT_RECORD = """INSERT INTO records (collection, scope, key, seq, data) VALUES (?, ?, ?,
    (SELECT COALESCE(MAX(seq), 0) + 1 FROM records WHERE collection = ? AND scope = ?), ?)
    ON CONFLICT (collection, scope, key) DO UPDATE SET data = excluded.data"""
#: an exchange appended in one statement (both engines speak it, each with its ``{lock}`` and ``{unless}``): its
#: sequence number the trace's next, written as the first member of the stored object (``{"seq": n, ...the
#: exchange's members}``, the text the exchange's JSON object with ``"seq":n,`` put after its opening brace) — only
#: while its session is in the store: an exchange of a session the sweep deleted meanwhile is not written (no row
#: back), never left behind as an orphan the sweep no longer finds. On PostgreSQL the look-up share-locks the
#: session's row (``{lock}``), which the sweep's lock on it waits for: an append either commits before the sweep
#: reads the session's rows (and is deleted with them) or waits for the sweep and finds the session gone.
APPEND_EXCHANGE_FORM = """INSERT INTO exchanges (session_id, seq, data)
    SELECT ?, n, '{"seq":' || n || ',' || substr(?, 2)
    FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM exchanges WHERE session_id = ?) AS next
    WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?{lock}){unless} RETURNING seq"""
#: :data:`APPEND_EXCHANGE_FORM` unless one of the given SHA-256 digests is an issued token's (then nothing is appended):
#: the exchange's text as it is, and the look-up that says it holds no secret, in one statement
APPEND_EXCHANGE_UNLESS = APPEND_EXCHANGE_FORM.replace("{lock}", "").replace(
    "{unless}", " AND NOT EXISTS (SELECT 1 FROM tokens WHERE token_sha256 IN (SELECT value FROM json_each(?)))")
PG_APPEND_EXCHANGE_UNLESS = APPEND_EXCHANGE_FORM.replace("{lock}", " FOR KEY SHARE").replace(
    "{unless}", " AND NOT EXISTS (SELECT 1 FROM tokens WHERE token_sha256 = ANY(?))")
#: a session's row share-locked while an exchange is appended under the trace's lock (PostgreSQL: see
#: :data:`APPEND_EXCHANGE_FORM`)
PG_SESSION_KEPT = "SELECT 1 FROM sessions WHERE id = ? FOR KEY SHARE"


class SessionGone(Exception):
    """An exchange or note of a session no longer in the store (swept while its request was served): nothing was
    written."""

    def __init__(self, session_id: str):
        super().__init__(f"test session {session_id} is no longer in the store (swept after its retention)")
        self.session_id = session_id


#: a run's attempt: the runs its binding made for its wave and category before it, plus one (counted under the lock of
#: that binding, wave and category: two runs created at once never share a number; the unique key refuses it anyway)
RUN_ATTEMPT = "SELECT COUNT(*) + 1 FROM runs WHERE binding = ? AND wave = ? AND category = ?"
INSERT_RUN = "INSERT INTO runs (id, binding, wave, category, attempt, data) VALUES (?, ?, ?, ?, ?, ?)"
#: a scenario of a run taken by a session, once, and only while the run is not finished: a row back when this
#: statement took it, none when it was taken or the run finished (:data:`RUN_FINISHED` then says which)
CLAIM_SCENARIO = """INSERT INTO run_scenarios (run_id, scenario, session_id) SELECT ?, ?, ?
    WHERE NOT EXISTS (SELECT 1 FROM run_finishes WHERE run_id = ?)
    ON CONFLICT (run_id, scenario) DO NOTHING RETURNING session_id"""
#: when a run was finished (``POST /admin/runs/{id}/finish``: its seed revealed, no session of it after), if it was
RUN_FINISHED = "SELECT finished FROM run_finishes WHERE run_id = ?"
#: a run finished, once (finishing it again keeps the first time)
FINISH_RUN = "INSERT INTO run_finishes (run_id, finished) VALUES (?, ?) ON CONFLICT (run_id) DO NOTHING"
#: the scenarios a run's sessions took, with their sessions
RUN_PLAYED = "SELECT scenario, session_id FROM run_scenarios WHERE run_id = ? ORDER BY scenario"
#: what :meth:`Store.claim_scenario` says: the session took the scenario, another session had, or the run is finished
Claim = Literal["claimed", "taken", "finished"]


@dataclass(frozen=True, slots=True)
class Bound:
    """A vendor's bound the store found reached (:meth:`Store.admit_session`, :meth:`Store.create_run`): what
    (``live-sessions``, ``runs-per-hour``, ``runs-per-day``), its limit, and when a place frees (epoch seconds)."""

    what: str
    limit: int
    frees_at: float


class BoundReached(Exception):
    """A vendor's bound is reached: nothing was written."""

    def __init__(self, bound: Bound):
        super().__init__(f"{bound.what}: {bound.limit}")
        self.bound = bound


@dataclass(frozen=True, slots=True)
class RunBounds:
    """The runs one binding may create in the last hour and in the last day; ``binding``: the key they are counted
    under (:func:`bounds_binding`; None: the run's own binding, :func:`run_binding`)."""

    per_hour: int
    per_day: int
    binding: str | None = None


HOUR, DAY = 3600.0, 86400.0
#: a binding's live sessions: those past their expiry go first, then the rest are counted (with the first to expire)
LIVE_SESSIONS_COUNT = "SELECT COUNT(*), MIN(live_until) FROM session_owners WHERE binding = ? AND live_until > ?"
#: what a binding's sessions (live or not, until swept) made the sandbox keep, and when the first of them was created
#: (the sweep goes by creation: a session closed early is swept no sooner)
OWNED_BYTES = """SELECT COALESCE(SUM(r.bytes), 0), MIN(s.created) FROM session_owners AS o
    JOIN recorded AS r ON r.scope = o.session_id LEFT JOIN sessions AS s ON s.id = o.session_id
    WHERE o.binding = ?"""
LIVE_SESSION_ADD = "INSERT INTO session_owners (session_id, binding, live_until) VALUES (?, ?, ?)"
LIVE_SESSION_END = "UPDATE session_owners SET live_until = ? WHERE session_id = ? AND live_until > ?"
#: a finished run's sessions no longer count among their vendor's live sessions (a run stopped midway, its sessions
#: never closed, would hold their places until they expired)
RUN_SESSIONS_END = ("UPDATE session_owners SET live_until = ? WHERE live_until > ? AND session_id IN "
                    "(SELECT session_id FROM run_scenarios WHERE run_id = ?)")
LIVE_SESSION_FORGET = "DELETE FROM session_owners WHERE session_id = ?"
#: what a session made the sandbox keep so far, in bytes
RECORDED_BYTES = "SELECT bytes FROM recorded WHERE scope = ?"
#: a binding's runs of the last day (older marks go first), and of the last hour, each with its oldest
RUN_MARKS_OLD = "DELETE FROM run_marks WHERE binding = ? AND at <= ?"
RUN_MARKS_SINCE = "SELECT COUNT(*), MIN(at) FROM run_marks WHERE binding = ? AND at > ?"
RUN_MARK_ADD = "INSERT INTO run_marks (run_id, binding, at) VALUES (?, ?, ?)"


#: sessions swept at most in one transaction (:meth:`Store.sweep_sessions`), oldest first
SWEEP_BATCH = 200
SWEEP_SELECT = "SELECT id FROM sessions WHERE created < ? ORDER BY created LIMIT ?"
#: PostgreSQL: the sessions swept locked first, so that an append share-locking one of them (:data:`APPEND_EXCHANGE_FORM`)
#: commits before their rows are deleted, or waits for the sweep and finds its session gone
PG_SWEEP_SELECT = SWEEP_SELECT + " FOR UPDATE"
#: where a session leaves data, by the column naming it (the session itself last)
SWEPT = (("exchanges", "session_id"), ("records", "scope"), ("tokens", "scope"), ("held", "session_id"),
         ("session_owners", "session_id"), ("recorded", "scope"), ("sessions", "id"))


def _admit_session(db: Any, binding: str, session_id: str, now: float, expires: float, limit: int,
                   max_bytes: int | None, swept_after: float) -> None:
    """Count ``session_id`` among the binding's live sessions, inside the caller's transaction (under the binding's
    lock); :class:`BoundReached` when ``limit`` are live, or when its sessions kept (until swept, at the latest
    ``swept_after`` seconds after they were created) ``max_bytes`` or more (the caller rolls back: nothing
    written)."""
    count, first = db.execute(LIVE_SESSIONS_COUNT, (binding, now)).fetchone()
    if int(count) >= limit:
        raise BoundReached(Bound("live-sessions", limit, float(first)))
    if max_bytes is not None:
        kept, created = db.execute(OWNED_BYTES, (binding,)).fetchone()
        if int(kept) >= max_bytes:
            raise BoundReached(Bound("recorded-bytes", max_bytes, float(created if created is not None else now)
                                     + swept_after))
    db.execute(LIVE_SESSION_ADD, (session_id, binding, expires))


def _check_runs(db: Any, binding: str, now: float, bounds: RunBounds) -> None:
    """:class:`BoundReached` when the binding created ``bounds`` runs in the last hour or day (inside the caller's
    transaction); marks older than a day are dropped."""
    db.execute(RUN_MARKS_OLD, (binding, now - DAY))
    for window, limit, what in ((HOUR, bounds.per_hour, "runs-per-hour"), (DAY, bounds.per_day, "runs-per-day")):
        count, oldest = db.execute(RUN_MARKS_SINCE, (binding, now - window)).fetchone()
        if int(count) >= limit:
            raise BoundReached(Bound(what, limit, (now if oldest is None else float(oldest)) + window))


def run_binding(bound_to: dict[str, str] | None) -> str:
    """The key a run's attempts are counted under: the vendor and software of the harness token (``null``: the
    admin's)."""
    return json.dumps(bound_to, sort_keys=True)


def bounds_binding(vendor: dict[str, str], witnessed: bool) -> str:
    """The key a harness token's bounds are counted under (live sessions, recorded bytes, runs per hour and day,
    exports under way): its software's (:func:`run_binding`), or, for a token the sandbox's operator minted for a run
    it drives itself (``witnessed``: the agency witnessing the software), a key of its own — the vendor's runs cannot
    use up the places of the agency's witnessed run, nor the agency's those of the vendor's. Its runs' attempts and
    its sessions' ``bound_to`` stay the software's."""
    return run_binding(vendor | {"witnessed": "operator"}) if witnessed else run_binding(vendor)


def _new_run(db: Any, run: dict[str, Any], bounds: RunBounds | None = None) -> dict[str, Any]:
    """Insert ``run`` (without its attempt) on ``db``, inside the caller's transaction; the run with its attempt.
    ``bounds``: the runs its binding may create per hour and day (:class:`BoundReached`, nothing written, beyond)."""
    key = (run_binding(run["bound_to"]), run["wave"], run["category"])
    if bounds is not None:
        now, counted = time.time(), bounds.binding or key[0]
        _check_runs(db, counted, now, bounds)
        db.execute(RUN_MARK_ADD, (run["id"], counted, now))
    attempt = int(db.execute(RUN_ATTEMPT, key).fetchone()[0])
    stored = run | {"attempt": attempt}
    db.execute(INSERT_RUN, (run["id"], *key, attempt, json.dumps(stored)))
    return stored


def _finish_run(db: Any, run_id: str, now: str) -> tuple[str, list[tuple[str, str]]]:
    """Finish the run on ``db``, inside the caller's transaction (:meth:`Store.finish_run`): when it was finished, the
    scenarios its sessions took, and its sessions' live places given back."""
    db.execute(FINISH_RUN, (run_id, now))
    finished = str(db.execute(RUN_FINISHED, (run_id,)).fetchone()[0])
    ended = time.time()
    db.execute(RUN_SESSIONS_END, (ended, ended, run_id))
    return finished, [(str(a), str(b)) for a, b in db.execute(RUN_PLAYED, (run_id,)).fetchall()]


#: a request's session and its bearer token's record, one statement (one row even when either is missing)
SESSION_AND_TOKEN = """SELECT s.data, t.kind, t.scope, t.expires, t.data, r.bytes FROM (SELECT 1) AS one
    LEFT JOIN sessions AS s ON s.id = ? LEFT JOIN tokens AS t ON t.token_sha256 = ?
    LEFT JOIN recorded AS r ON r.scope = s.id"""


def _token_record(kind: str, scope: str, expires: float, data: str | dict[str, Any]) -> dict[str, Any]:
    """A token row as :meth:`Store.get_token` returns it: its data (text, or already parsed) with ``kind``,
    ``scope`` and ``expired``."""
    return ((parse_json(data) if isinstance(data, str) else data)
            | {"kind": kind, "scope": scope, "expired": expires < time.time()})


class KeptTexts:
    """What a store keeps of the texts requests read: sessions (≈ 60 KB each parsed, 9 KB of text: 1,024 of them,
    four times the 250 sessions of the sizing bar; read as :meth:`Store.get_session` reads them, :func:`load_own`)
    and tokens' data (small: 4,096)."""

    __slots__ = ("sessions", "tokens")

    def __init__(self) -> None:
        self.sessions, self.tokens = ParsedTexts(1024, load_own), ParsedTexts(4096)


def _session_and_token(row: Any, session_id: str, digest: str, kept: KeptTexts) -> tuple[dict[str, Any] | None,
                                                                                       dict[str, Any] | None]:
    """The row of :data:`SESSION_AND_TOKEN` as values: the session and the token's data read-only, each parsed once
    for all the requests that read the same text (``kept``), the token's record a new object around its data."""
    if row is None:
        return None, None
    return (kept.sessions.value(session_id, row[0]) if row[0] is not None else None,
            _token_record(row[1], row[2], row[3], kept.tokens.value(digest, row[4])) if row[1] is not None else None)


def load_own(text: str) -> Any:
    """A value :func:`dump_own` wrote (a session: what the sandbox built, fault counts at most 100), parsed by orjson
    (twice as fast as ``json.loads`` on a session's fixtures, read on every request)."""
    return orjson.loads(text)


def dump_own(value: dict[str, Any]) -> str:
    """JSON text of a value the sandbox itself built with no NaN or infinity in it (a session; an exchange the
    recording middleware checked signable), where orjson writes exactly what ``json.dumps`` would mean, 50x sooner;
    what it cannot write (an integer beyond 64 bits, a lone surrogate) goes through ``json.dumps``."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value)


class Store:
    """Thread-safe access to the sandbox database."""

    #: its calls are short local work (SQLite): the event loop makes them itself rather than hand them to a thread
    on_loop = True

    def __init__(self, path: Path):
        private_dir(path.parent)
        create_private(path)
        self._lock = threading.RLock()
        self._kept = KeptTexts()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # a page cache of up to 32 MiB (SQLite's default is 2 MiB): a trace and the documents of a run outgrow
            # 2 MiB within a few hundred submissions, and each write then read its pages back (an appended exchange
            # cost 1.8x)
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # the log is copied back by a thread of its own (``sandbox.wal``): a commit on the event loop no longer
            # does
            self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self._migrate()
            counted = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = "
                                       "'exchanges_recorded'").fetchone() is not None
            self._db.executescript(SCHEMA + SQLITE_RECORDED)
            if not counted:  # the store's first counts (created, or upgraded with its sessions' data): RECOUNT
                with self._immediate() as db:
                    db.execute(SQLITE_RECOUNT)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as exc:  # a damaged or foreign file in the state folder: said, not a traceback
            self._db.close()
            from conformity.errors import InputError

            raise InputError(f"not a usable SQLite sandbox store: {exc} (the state folder's database: restore it, "
                             "or serve another --data folder)", file=path) from exc
        self._checkpointer = Checkpointer(path)

    def _migrate(self) -> None:
        """Version 1 kept tokens and session secrets in clear: hash them in place (once, in one transaction)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            return
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != "1":
            return
        self._db.execute("PRAGMA secure_delete=ON")  # the clear values are overwritten, not just unlinked
        with self._immediate() as db:
            old = db.execute("SELECT token, kind, scope, expires, data FROM tokens").fetchall()
            db.execute("DROP TABLE tokens")
            db.execute(TOKENS_TABLE)
            for token, kind, scope, expires, data in old:
                db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                           (secret_hash(token), display_prefix(token), kind, scope, expires,
                            json.dumps(_hashed_grant(json.loads(data)))))
            for sid, data in db.execute("SELECT id, data FROM sessions").fetchall():
                db.execute("UPDATE sessions SET data = ? WHERE id = ?",
                           (json.dumps(hash_session_secrets(json.loads(data))), sid))
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._db.close()

    def lock(self, name: str) -> AbstractContextManager[Any]:
        """Mutual exclusion for a service's check-then-write (``name``: what it guards), across every process
        sharing the store: here, the one process's lock (itself: no generator-based context manager around it)."""
        return self._lock

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction taken at once (``BEGIN IMMEDIATE``: also against another process on the same file),
        this process's other store calls waiting: committed whole, or rolled back when the block raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def batch(self) -> AbstractContextManager[Any]:
        """The writes of this block committed together, once, at its end — also when it raises (each stays written
        as if it had been committed alone: only the number of commits changes). Here: one SQLite transaction, this
        process's other store calls waiting meanwhile."""
        return _Batch(self._lock, self._db)

    def locked_batch(self, name: str) -> AbstractContextManager[Any]:
        """:meth:`lock` and :meth:`batch` in one: a check-then-write on ``name`` whose writes are committed at the end
        of the block, before another writer on ``name`` may read. Here: :meth:`batch` (it holds the one process's
        lock)."""
        return self.batch()

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return parse_json(row[0]) if row else None

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [parse_json(r[0]) for r in rows]

    def _run(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # sessions
    def put_session(self, session: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)",
                  (session["id"], session.get("created_ts", time.time()), dump_own(session)))

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return load_own(row[0]) if row else None

    def session_and_token(self, session_id: str, token: str | None) -> tuple[dict[str, Any] | None,
                                                                             dict[str, Any] | None]:
        """A request's two reads in one statement: the session, read-only (``sandbox.parsed``: shared by the requests
        that read the same text; :meth:`update_session` changes it), and the record of the bearer token it carries
        (as :meth:`get_token`, its data read-only; None when there is no token or it is unknown)."""
        session, record, _ = self.arrival(session_id, token)
        return session, record

    def arrival(self, session_id: str, token: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
        """:meth:`session_and_token`, and what the session made the sandbox keep so far (:meth:`recorded_bytes`), in
        the same statement: what the recording middleware reads as a request arrives."""
        digest = secret_hash(token) if token else ""
        with self._lock:
            row = self._db.execute(SESSION_AND_TOKEN, (session_id, digest)).fetchone()
        return (*_session_and_token(row, session_id, digest, self._kept), int(row[5] or 0) if row else 0)

    def update_session(self, session_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        """Atomically read a session, let ``change`` mutate it, write it back; None if unknown."""
        with self._lock:
            session = self.get_session(session_id)
            if session is None:
                return None
            change(session)
            self.put_session(session)
            return session

    def list_sessions(self) -> list[dict[str, Any]]:
        return self._all("SELECT data FROM sessions ORDER BY created", ())

    # runs (``POST /admin/runs``): a run's attempt counted and the run inserted in one transaction
    def create_run(self, run: dict[str, Any], bounds: RunBounds | None = None) -> dict[str, Any]:
        """Store a new run (``id``, ``bound_to``, ``wave``, ``category``…); return it with its ``attempt``: the number
        of runs its binding made for its wave and category, this one included. ``bounds``: the runs its binding may
        create in an hour and a day, counted in the same transaction (:class:`BoundReached`: nothing stored)."""
        with self._immediate() as db:
            return _new_run(db, run, bounds)

    # a vendor's live sessions (harness tokens' sessions, open and unexpired): counted as each is created
    def admit_session(self, binding: str, session_id: str, expires: float, limit: int, *,
                      max_bytes: int | None = None, swept_after: float = 0.0) -> None:
        """Count ``session_id`` among the live sessions of ``binding`` (:func:`run_binding`) until ``expires`` or
        :meth:`end_session`; :class:`BoundReached` when ``limit`` are live already, or when the binding's sessions
        (until swept: ``swept_after`` seconds after their creation at the latest, what its Retry-After says) made the
        sandbox keep ``max_bytes`` or more (one transaction: two sessions created at once
        never both take the last place)."""
        with self._immediate() as db:
            _admit_session(db, binding, session_id, time.time(), expires, limit, max_bytes, swept_after)

    def end_session(self, session_id: str) -> None:
        """The session no longer counts among its vendor's live sessions (closed); what it recorded still counts
        among its vendor's bytes until it is swept."""
        now = time.time()
        self._run(LIVE_SESSION_END, (now, session_id, now))

    def forget_session(self, session_id: str) -> None:
        """A session admitted and never created: it takes no place."""
        self._run(LIVE_SESSION_FORGET, (session_id,))

    def recorded_bytes(self, session_id: str) -> int:
        """What the session made the sandbox keep so far (its exchanges and records), in bytes."""
        with self._lock:
            row = self._db.execute(RECORDED_BYTES, (session_id,)).fetchone()
        return int(row[0]) if row else 0

    def sweep_sessions(self, created_before: float, limit: int = SWEEP_BATCH) -> int:
        """Delete up to ``limit`` sessions created before ``created_before`` (epoch seconds), oldest first, with all
        they left in the store — trace, service records, tokens, held answers, live place — in one transaction;
        how many. (A run keeps the scenarios its sessions played.)"""
        with self._immediate() as db:
            ids = [r[0] for r in db.execute(SWEEP_SELECT, (created_before, limit))]
            if ids:
                listed = json.dumps(ids)
                for table, column in SWEPT:
                    db.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))", (listed,))
        return len(ids)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._one("SELECT data FROM runs WHERE id = ?", (run_id,))

    def release_scenario(self, run_id: str, scenario: str, session_id: str) -> None:
        """Give back a scenario ``session_id`` claimed and never got (its session could not be stored)."""
        self._run("DELETE FROM run_scenarios WHERE run_id = ? AND scenario = ? AND session_id = ?",
                  (run_id, scenario, session_id))

    def claim_scenario(self, run_id: str, scenario: str, session_id: str) -> Claim:
        """Record that ``session_id`` runs ``scenario`` of the run, unless a session already took it or the run is
        finished (one statement: a run finished meanwhile takes no session)."""
        with self._lock:
            rows = self._db.execute(CLAIM_SCENARIO, (run_id, scenario, session_id, run_id)).fetchall()
            if rows:
                return "claimed"
            return "finished" if self._db.execute(RUN_FINISHED, (run_id,)).fetchone() else "taken"

    def run_finished(self, run_id: str) -> str | None:
        """When the run was finished (ISO 8601), None while it is open."""
        with self._lock:
            row = self._db.execute(RUN_FINISHED, (run_id,)).fetchone()
        return str(row[0]) if row else None

    def finish_run(self, run_id: str, now: str) -> tuple[str, list[tuple[str, str]]]:
        """Finish the run (at ``now``, or when it was first finished); when, and the scenarios its sessions took
        (scenario, session id), read in the same transaction: no session takes one after. Its sessions no longer count
        among their vendor's live sessions."""
        with self._immediate() as db:
            return _finish_run(db, run_id, now)

    # tokens (access, refresh and session tokens, authorization codes, harness tokens): by hash only
    def put_token(self, token: str, kind: str, scope: str, data: dict[str, Any], ttl: float) -> None:
        self._run("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                  (secret_hash(token), display_prefix(token), kind, scope, time.time() + ttl, json.dumps(data)))

    def get_token(self, token: str) -> dict[str, Any] | None:
        """The token's record with ``kind``, ``scope``, ``expired`` added, or None if unknown."""
        return self.get_token_by_hash(secret_hash(token))

    def get_token_by_hash(self, digest: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT kind, scope, expires, data FROM tokens WHERE token_sha256 = ?",
                                   (digest,)).fetchone()
        return _token_record(*row) if row else None

    def update_token_data(self, digest: str, data: dict[str, Any]) -> None:
        """Replace the data of the token with this hash, its kind, scope and expiry kept (nothing if unknown)."""
        self._run("UPDATE tokens SET data = ? WHERE token_sha256 = ?", (json.dumps(data), digest))

    def take_token(self, token: str) -> dict[str, Any] | None:
        """Read and delete a one-time token (an authorization code)."""
        return self.take_token_by_hash(secret_hash(token))

    def take_token_by_hash(self, digest: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.get_token_by_hash(digest)
            self._db.execute("DELETE FROM tokens WHERE token_sha256 = ?", (digest,))
        return found

    def known_hashes(self, digests: Iterable[str]) -> set[str]:
        """Which of these SHA-256 digests are tokens the sandbox issued (any kind, any session)."""
        wanted = sorted(set(digests))
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(r[0] for r in self._db.execute(
                    f"SELECT token_sha256 FROM tokens WHERE token_sha256 IN ({marks})", chunk))
        return found

    # traces
    def append_exchange(self, session_id: str, exchange: dict[str, Any], *, checked: bool = False) -> int:
        """Append to a session's trace; its sequence number. ``checked``: the exchange holds no NaN or infinity.
        :class:`SessionGone`, nothing written, when the session is no longer in the store."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                raise SessionGone(session_id)
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges WHERE session_id = ?",
                                   (session_id,)).fetchone()
            seq = row[0] + 1
            exchange = {"seq": seq, **exchange}
            data = dump_own(exchange) if checked else json.dumps(exchange)
            self._db.execute("INSERT INTO exchanges VALUES (?, ?, ?)", (session_id, seq, data))
        return seq

    def append_exchange_text(self, session_id: str, text: str) -> int:
        """Append an exchange given as the JSON text :func:`dump_own` writes of it (an object with members, none of
        them ``seq``); its sequence number. Stored as :meth:`append_exchange` stores it, ``{"seq":n,`` and its
        members: the same text, in one statement, without writing the exchange again."""
        seq = self.append_exchange_text_unless_issued(session_id, text, ())
        if seq is None:  # no digest to find among the tokens: not appended only when the session is gone
            raise SessionGone(session_id)
        return seq

    def append_exchange_text_unless_issued(self, session_id: str, text: str, digests: Collection[str]) -> int | None:
        """:meth:`append_exchange_text`, unless one of ``digests`` (SHA-256, as :meth:`known_hashes` takes them) is a
        token the sandbox issued: then None, nothing appended (the caller redacts it; None too when the session is no
        longer in the store, which appending the redacted exchange then says). The look-up and the append are one
        statement: an exchange with no secret in it costs one round trip, not two."""
        with self._lock:
            rows = self._db.execute(APPEND_EXCHANGE_UNLESS, (session_id, text, session_id, session_id,
                                                             json.dumps(sorted(digests)))).fetchall()
        return int(rows[0][0]) if rows else None

    def exchanges(self, session_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT data FROM exchanges WHERE session_id = ? ORDER BY seq", (session_id,))

    # answers held until the software gives up (sandbox.network's stall): their exchange is not in the trace yet
    def hold(self, session_id: str, request_id: str) -> None:
        self._run("INSERT INTO held VALUES (?, ?, ?)", (session_id, request_id, time.time()))

    def release(self, session_id: str, request_id: str) -> None:
        self._run("DELETE FROM held WHERE session_id = ? AND id = ?", (session_id, request_id))

    def holding(self, session_id: str) -> bool:
        """True while an answer of the session is held (its exchange still to be written), in any process."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM held WHERE session_id = ? AND since > ? LIMIT 1",
                                   (session_id, time.time() - HELD_AT_MOST)).fetchone()
        return row is not None

    # service records (documents, messages, …), scoped by session id or "prod"
    def put_record(self, collection: str, scope: str, key: str, data: dict[str, Any], *, checked: bool = False) -> None:
        """Insert at the end of the collection's order, or replace the data of a key already there (its place kept):
        one statement. ``checked``: the data holds no NaN or infinity (written by :func:`dump_own`)."""
        self._run(PUT_RECORD, (collection, scope, key, collection, scope, dump_own(data) if checked else json.dumps(data)))

    def get_record(self, collection: str, scope: str, key: str) -> dict[str, Any] | None:
        return self._one("SELECT data FROM records WHERE collection = ? AND scope = ? AND key = ?",
                         (collection, scope, key))

    def list_records(self, collection: str, scope: str) -> list[dict[str, Any]]:
        return self._all("SELECT data FROM records WHERE collection = ? AND scope = ? ORDER BY seq", (collection, scope))


    # installations (production role)
    def put_installation(self, inst: dict[str, Any], token_hash: str) -> None:
        self._run("INSERT OR REPLACE INTO installations VALUES (?, ?, ?)", (inst["id"], token_hash, json.dumps(inst)))

    def installation_by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        return self._one("SELECT data FROM installations WHERE token_hash = ?", (token_hash,))

    def list_installations(self) -> list[dict[str, Any]]:
        return self._all("SELECT data FROM installations ORDER BY id", ())


class _Batch:
    """:meth:`Store.batch`: the store's lock held, one transaction begun unless one is open (a batch within a batch:
    the outer one commits), committed at the end of the block whether it raised or not, the lock released."""

    __slots__ = ("_lock", "_db", "_began")

    def __init__(self, lock: threading.RLock, db: sqlite3.Connection):
        self._lock, self._db, self._began = lock, db, False

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
                self._began = True
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._began and self._db.in_transaction:  # (a failed statement may have ended it already)
                self._db.execute("COMMIT")
        finally:
            self._lock.release()


def hash_session_secrets(session: dict[str, Any]) -> dict[str, Any]:
    """A session record with its client secret and session token replaced by hash and prefix."""
    out = dict(session)
    for name in ("client_secret", "session_token"):
        value = out.pop(name, None)
        if isinstance(value, str):
            out[f"{name}_sha256"], out[f"{name}_prefix"] = secret_hash(value), display_prefix(value)
    return out


def _hashed_grant(data: dict[str, Any]) -> dict[str, Any]:
    """A token record's data with any token it names (a used code's access token) kept as a hash."""
    out = dict(data)
    value = out.pop("access_token", None)
    if isinstance(value, str):
        out["access_token_sha256"] = secret_hash(value)
    return out


# ---------------------------------------------------------------------------------------------- PostgreSQL
#: the same tables as SQLite's (SCHEMA), with PostgreSQL's name for an 8-byte float; and the sequence that gives a
#: new record its place (PG_PUT_RECORD)
PG_SCHEMA = (SCHEMA.replace(" REAL ", " DOUBLE PRECISION ") + "CREATE SEQUENCE IF NOT EXISTS records_seq;\n"
             + PG_RECORDED)
#: a database whose records were placed by the collection's MAX(seq) + 1 (before records_seq): the sequence starts
#: after every place already taken (never moved back)
PG_RECORDS_SEQ_START = """SELECT setval('records_seq', m) FROM (SELECT MAX(seq) AS m FROM records) AS r
    WHERE m >= (SELECT last_value FROM records_seq)"""
#: a record put in one autocommitted statement (one round trip, not a locked four-statement transaction): a new key
#: takes the sequence's next value, greater than the place of every record put before this statement began, so it
#: goes after the collection's last; a known key keeps its place (the value the conflict consumed is a gap). Two
#: workers putting new keys at once get distinct places, in either order.
PG_PUT_RECORD = """INSERT INTO records (collection, scope, key, seq, data) VALUES (?, ?, ?, nextval('records_seq'), ?)
    ON CONFLICT (collection, scope, key) DO UPDATE SET data = excluded.data"""
#: advisory lock classes (the first key of pg_advisory_xact_lock(int, int)): what a transaction serialises on (3 was
#: a collection's, before records were placed by a sequence)
LOCK_SESSION, LOCK_TRACE, LOCK_SERVICE, LOCK_SCHEMA, LOCK_RUNS, LOCK_RUN, LOCK_LIVE, LOCK_SWEEP = 1, 2, 4, 5, 6, 7, 8, 9



class PostgresStore(Store):
    """The same store in PostgreSQL, shared by several worker processes (``usine sandbox serve --workers N``).

    Connections are pooled per process (:class:`conformity.db.connection.Database`). Every read-modify-write is
    one transaction holding a transaction-scoped advisory lock on what it changes: a session's record (faults
    consumed, state), a trace's next sequence number, a collection's, a one-time code taken once. Plain reads
    and writes are single autocommitted statements.
    """

    #: every call is a network round trip: the event loop hands them to threads, and serves others meanwhile
    on_loop = False

    def __init__(self, url: str):  # the parent opens SQLite: this opens PostgreSQL instead
        from conformity.db.connection import Database

        self._lock = threading.RLock()
        self._kept = KeptTexts()
        self._pg = Database(url, pool=64)
        self._held = threading.local()  # the connection a thread holds a lock on (``lock``): its calls run there
        try:
            with self._tx(LOCK_SCHEMA, "schema") as conn:
                conn.script(PG_SCHEMA)
                conn.execute(PG_RECORDS_SEQ_START)
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    from conformity.errors import InputError

                    raise InputError(f"the sandbox database {self._pg.where} has schema version {row[0]}, this "
                                     f"sandbox speaks {SCHEMA_VERSION}")
        except self._pg.errors as exc:  # a role that may not create the tables, a read-only server: said, not a trace
            self._pg.dispose()
            raise self._pg.refused(exc, "sandbox store") from exc

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled connection; within ``lock`` on this thread, the lock's own (so a thread holds one at a time)."""
        held = getattr(self._held, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._pg.connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _tx(self, kind: int, key: str) -> Iterator[Any]:
        """One transaction holding the advisory lock (kind, key); committed whole or rolled back."""
        with self._conn() as conn:
            conn.raw.execute("BEGIN")
            try:
                conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (kind, key))
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def close(self) -> None:
        self._pg.dispose()

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Mutual exclusion across every worker process: a session-level advisory lock, and the guarded store calls
        of this thread run on the connection that holds it. (They ran on other connections: a thread held two at
        once, and with the locks scoped per session, 250 sessions' submissions on two workers opened more than
        PostgreSQL's 100 connections — "remaining connection slots are reserved".) Nothing awaits inside a lock:
        the connection is the thread's."""
        with self._conn() as conn:
            outer = getattr(self._held, "conn", None)
            conn.execute("SELECT pg_advisory_lock(?, hashtext(?))", (LOCK_SERVICE, name))
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = outer
                conn.execute("SELECT pg_advisory_unlock(?, hashtext(?))", (LOCK_SERVICE, name))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Each statement commits on its own (its round trip is the cost here, not the commit)."""
        yield

    @contextmanager
    def locked_batch(self, name: str) -> Iterator[None]:
        """One transaction holding ``name``'s advisory lock (the one :meth:`lock` takes) until it commits, its
        statements pipelined on this thread's connection: the lock goes with the first read, the writes with the
        commit — two round trips for a submission's check-then-write, where a statement each with :meth:`lock` took
        five. The lock is a transaction's (``pg_advisory_xact_lock``): released by the commit itself, so no writer on
        ``name`` reads before the writes are committed, and never left held by an error (PostgreSQL undoes the block's
        writes when it refuses one of them). Nothing in the block may begin a transaction of its own (the block is
        one); within a :meth:`lock` already held, it is :meth:`lock` (each statement committed on its own)."""
        if getattr(self._held, "conn", None) is not None:
            with self.lock(name):
                yield
            return
        with self._conn() as conn:
            self._held.conn = conn
            try:
                with conn.raw.pipeline():
                    conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_SERVICE, name))
                    yield
            finally:
                self._held.conn = None

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._conn() as conn:
            row = conn.execute(sql, args).fetchone()
        return parse_json(row[0]) if row else None

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [parse_json(r[0]) for r in rows]

    def _run(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._conn() as conn:
            conn.execute(sql, args)

    def put_session(self, session: dict[str, Any]) -> None:
        self._run("INSERT INTO sessions VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                  (session["id"], session.get("created_ts", time.time()), dump_own(session)))

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            row = conn.execute("SELECT data FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return load_own(row[0]) if row else None

    def session_and_token(self, session_id: str, token: str | None) -> tuple[dict[str, Any] | None,
                                                                             dict[str, Any] | None]:
        session, record, _ = self.arrival(session_id, token)
        return session, record

    def arrival(self, session_id: str, token: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
        digest = secret_hash(token) if token else ""
        with self._conn() as conn:
            row = conn.execute(SESSION_AND_TOKEN, (session_id, digest)).fetchone()
        return (*_session_and_token(row, session_id, digest, self._kept), int(row[5] or 0) if row else 0)

    def update_session(self, session_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        with self._tx(LOCK_SESSION, session_id) as conn:
            row = conn.execute("SELECT data FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            session: dict[str, Any] = load_own(row[0])
            change(session)
            conn.execute("UPDATE sessions SET data = ? WHERE id = ?", (dump_own(session), session_id))
            return session

    def create_run(self, run: dict[str, Any], bounds: RunBounds | None = None) -> dict[str, Any]:
        """One transaction under the lock of the run's binding (workers creating runs at once count one after the
        other: its attempts in a wave and category, and its runs of the last hour and day)."""
        with self._tx(LOCK_RUNS, run_binding(run["bound_to"])) as conn:
            return _new_run(conn, run, bounds)

    def admit_session(self, binding: str, session_id: str, expires: float, limit: int, *,
                      max_bytes: int | None = None, swept_after: float = 0.0) -> None:
        """One transaction under the binding's lock (workers creating its sessions at once count one after the
        other)."""
        with self._tx(LOCK_LIVE, binding) as conn:
            _admit_session(conn, binding, session_id, time.time(), expires, limit, max_bytes, swept_after)

    def recorded_bytes(self, session_id: str) -> int:
        with self._conn() as conn:
            row = conn.execute(RECORDED_BYTES, (session_id,)).fetchone()
        return int(row[0]) if row else 0

    def sweep_sessions(self, created_before: float, limit: int = SWEEP_BATCH) -> int:
        """One transaction under the sweep's lock (workers sweeping at once take turns, the second finding less)."""
        with self._tx(LOCK_SWEEP, "sweep") as conn:
            ids = [r[0] for r in conn.execute(PG_SWEEP_SELECT, (created_before, limit)).fetchall()]
            if ids:
                for table, column in SWEPT:
                    conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(?)", (ids,))
        return len(ids)

    def claim_scenario(self, run_id: str, scenario: str, session_id: str) -> Claim:
        """Under the run's lock, as its finish: a claim and a finish never pass each other."""
        with self._tx(LOCK_RUN, run_id) as conn:
            if conn.execute(CLAIM_SCENARIO, (run_id, scenario, session_id, run_id)).fetchone() is not None:
                return "claimed"
            return "finished" if conn.execute(RUN_FINISHED, (run_id,)).fetchone() else "taken"

    def run_finished(self, run_id: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute(RUN_FINISHED, (run_id,)).fetchone()
        return str(row[0]) if row else None

    def finish_run(self, run_id: str, now: str) -> tuple[str, list[tuple[str, str]]]:
        with self._tx(LOCK_RUN, run_id) as conn:
            return _finish_run(conn, run_id, now)

    def put_token(self, token: str, kind: str, scope: str, data: dict[str, Any], ttl: float) -> None:
        self._run("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (token_sha256) DO UPDATE SET "
                  "prefix = excluded.prefix, kind = excluded.kind, scope = excluded.scope, expires = excluded.expires, "
                  "data = excluded.data",
                  (secret_hash(token), display_prefix(token), kind, scope, time.time() + ttl, json.dumps(data)))

    def get_token_by_hash(self, digest: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            row = conn.execute("SELECT kind, scope, expires, data FROM tokens WHERE token_sha256 = ?",
                               (digest,)).fetchone()
        return _token_record(*row) if row else None

    def take_token_by_hash(self, digest: str) -> dict[str, Any] | None:
        """Read and delete in one statement: of two workers taking the same code, one gets it."""
        with self._conn() as conn:
            row = conn.execute("DELETE FROM tokens WHERE token_sha256 = ? RETURNING kind, scope, expires, data",
                               (digest,)).fetchone()
        return _token_record(*row) if row else None

    def known_hashes(self, digests: Iterable[str]) -> set[str]:
        wanted = sorted(set(digests))
        if not wanted:
            return set()
        with self._conn() as conn:
            return {r[0] for r in conn.execute("SELECT token_sha256 FROM tokens WHERE token_sha256 = ANY(?)", (wanted,))}

    def append_exchange(self, session_id: str, exchange: dict[str, Any], *, checked: bool = False) -> int:
        """One statement (one round trip, not five): the next sequence number taken in the insert itself, its
        ``"seq"`` member written first into the stored JSON text. Two workers appending to one trace at once may
        compute the same number: the primary key refuses the second, which takes the next (the exchange order is
        the order of the appends that succeed, as under the lock before)."""
        if "seq" in exchange or not exchange:
            return self._append_locked(session_id, exchange, checked=checked)
        return self.append_exchange_text(session_id, dump_own(exchange) if checked else json.dumps(exchange))

    def append_exchange_text_unless_issued(self, session_id: str, text: str, digests: Collection[str]) -> int | None:
        import psycopg

        wanted = sorted(digests)
        with self._conn() as conn:
            for _ in range(64):
                try:
                    row = conn.execute(PG_APPEND_EXCHANGE_UNLESS,
                                       (session_id, text, session_id, session_id, wanted)).fetchone()
                    return int(row[0]) if row else None
                except psycopg.errors.UniqueViolation:
                    continue
        if self.known_hashes(wanted):  # contended beyond reason: look, then take the lock
            return None
        return self._append_locked(session_id, text=text)

    def _append_locked(self, session_id: str, exchange: dict[str, Any] | None = None, *, checked: bool = False,
                       text: str | None = None) -> int:
        """Under the trace's lock: ``exchange`` (written here), or the ``text`` of one without ``seq``."""
        with self._tx(LOCK_TRACE, session_id) as conn:
            if conn.execute(PG_SESSION_KEPT, (session_id,)).fetchone() is None:
                raise SessionGone(session_id)
            seq = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges WHERE session_id = ?",
                                   (session_id,)).fetchone()[0]) + 1
            if text is not None:
                data = f'{{"seq":{seq},' + text[1:]
            else:
                exchange = {"seq": seq, **(exchange or {})}
                data = dump_own(exchange) if checked else json.dumps(exchange)
            conn.execute("INSERT INTO exchanges VALUES (?, ?, ?)", (session_id, seq, data))
        return seq

    def put_record(self, collection: str, scope: str, key: str, data: dict[str, Any], *, checked: bool = False) -> None:
        self._run(PG_PUT_RECORD, (collection, scope, key, dump_own(data) if checked else json.dumps(data)))

    def holding(self, session_id: str) -> bool:
        with self._conn() as conn:
            row = conn.execute("SELECT 1 FROM held WHERE session_id = ? AND since > ? LIMIT 1",
                               (session_id, time.time() - HELD_AT_MOST)).fetchone()
        return row is not None

    def put_installation(self, inst: dict[str, Any], token_hash: str) -> None:
        self._run("INSERT INTO installations VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                  "token_hash = excluded.token_hash, data = excluded.data", (inst["id"], token_hash, json.dumps(inst)))


def open_store(database: str | None, sqlite_path: Path) -> Store:
    """The store a sandbox runs on: PostgreSQL at ``database`` (a ``postgresql://`` URL), else SQLite at
    ``sqlite_path``."""
    return PostgresStore(database) if database else Store(sqlite_path)
