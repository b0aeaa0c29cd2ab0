"""A database by path (SQLite) or by ``postgresql://`` URL, behind one small interface.

SQL is written once, with ``?`` placeholders and the common subset of SQL both engines speak
(``INSERT … ON CONFLICT DO NOTHING``, ``RETURNING``); the PostgreSQL side translates placeholders
for psycopg. Writes go through :meth:`Connection.write`: one transaction, committed whole or rolled
back, and serialised against every other writer of the same database — ``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL — so that what a decision reads and what it
writes are one step on both engines. Connections are pooled per :class:`Database` (a service reuses
them across requests; a command opens one and closes it).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from conformity.errors import InputError
from conformity.files import create_private, private_dir

Dialect = Literal["sqlite", "postgresql"]
#: the key of the advisory lock every PostgreSQL writer takes (ASCII "usine")
WRITE_LOCK = 0x7573696E65
_URL = re.compile(r"^postgres(ql)?(\+psycopg)?://", re.I)
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|%")


def is_url(target: str | Path) -> bool:
    """True for a PostgreSQL URL (``postgresql://…``), False for a file path (SQLite)."""
    return isinstance(target, str) and bool(_URL.match(target))


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` outside quoted literals, and every ``%`` doubled, inside them too
    (psycopg reads ``'a%'`` as a placeholder; remembered: a service runs the same few statements on every request)."""
    return _TOKEN.sub(lambda m: "%s" if m.group() == "?" else m.group().replace("%", "%%"), sql)


def redact(url: str) -> str:
    """A URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Connection:
    """One connection: ``execute`` (``?`` placeholders), ``write()`` transactions, ``in_transaction``."""

    def __init__(self, raw: Any, dialect: Dialect, database: Database | None = None):
        self.raw, self.dialect, self.database = raw, dialect, database
        self.errors: tuple[type[BaseException], ...] = engine_errors(dialect)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor (``fetchone``, ``fetchall``, iteration)."""
        if self.dialect == "sqlite":
            return self.raw.execute(sql, tuple(args))
        return self.raw.execute(_pg_sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect == "sqlite":
            self.raw.executemany(sql, rows)
        elif rows:
            with self.raw.cursor() as cur:
                cur.executemany(_pg_sql(sql), [tuple(r) for r in rows])

    def script(self, sql: str) -> None:
        """Run DDL statements as they are (no placeholders), inside the current transaction."""
        if self.dialect == "sqlite":
            for statement in sqlite_statements(sql):
                self.raw.execute(statement)
        else:
            self.raw.execute(sql)

    @property
    def in_transaction(self) -> bool:
        if self.dialect == "sqlite":
            return bool(self.raw.in_transaction)
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def begin(self) -> None:
        """Start a write transaction, serialised with every other writer of the database."""
        if self.dialect == "sqlite":
            self.raw.execute("BEGIN IMMEDIATE")
        else:  # READ COMMITTED whatever the server's default: under REPEATABLE READ or SERIALIZABLE the snapshot would
            # be the lock statement's, taken before it waited, and the writer would not read what it waited for
            self.raw.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, taken at once: committed whole or not at all."""
        self.begin()
        try:
            yield self
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def close(self) -> None:
        """Give the connection back to its database's pool (or close it when it has none or is broken)."""
        if self.database is not None:
            self.database.release(self)
        else:
            self.raw.close()


def engine_errors(dialect: Dialect) -> tuple[type[BaseException], ...]:
    """The exceptions the engine's driver raises (``sqlite3.Error``, ``psycopg.Error``)."""
    if dialect == "sqlite":
        return (sqlite3.Error,)
    import psycopg

    return (psycopg.Error,)


#: SQLSTATEs a role or server refuses a usine store with, and what the operator does about it
_REFUSALS = {
    "42501": "the role {user} may not create or change tables there: as the database's owner, GRANT CREATE, USAGE "
             "ON SCHEMA public TO {user}; or give a database {user} owns (createdb -O {user} NAME)",
    "3F000": "the role {user} has no schema to create tables in (search_path): create one it owns, or give a "
             "database {user} owns (createdb -O {user} NAME)",
    "25006": "the server or database is read-only (a standby, or default_transaction_read_only): give the primary",
}


def sqlite_tables(path: Path) -> set[str] | None:
    """The tables of an existing SQLite file, read without changing it (its mode, journal and pages stay as they
    are): for a store to refuse another program's database before it touches it. None when there is nothing to
    look at, or it cannot be read this way (an empty or missing file, a WAL database without its shared-memory
    file): the store's own open then says what is wrong. ``sqlite3.DatabaseError`` when it is not a SQLite file."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    except (OSError, sqlite3.Error):
        return None
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError:  # busy, locked, unreadable: not a verdict on what the file is
        return None
    finally:
        db.close()


def sqlite_statements(script: str) -> list[str]:
    """Split a script into complete SQLite statements (triggers keep their inner semicolons)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip() and sqlite3.complete_statement(buf + ";"):
        out.append(buf.strip())
    elif buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf.strip()[:80]}")
    return out


class Database:
    """A database named by a path (SQLite file, created 0600 in a 0700 folder) or a PostgreSQL URL."""

    def __init__(self, target: str | Path, *, timeout: float = 60.0, pool: int = 8, what: str = "usine registry"):
        self.target, self.what = target, what  # what: how a refusal names what the file is not
        self.dialect: Dialect = "postgresql" if is_url(target) else "sqlite"
        self.path: Path | None = None if self.dialect == "postgresql" else Path(target)
        self.timeout, self.pool_size = timeout, pool
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self.migrated = False  # set once the migrations were checked in this process

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else redact(str(self.target))

    @property
    def where(self) -> str:
        """How messages name this database (a file, or a URL without password)."""
        return str(self)

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions this database's driver raises."""
        return engine_errors(self.dialect)

    def refused(self, exc: BaseException, what: str) -> InputError:
        """A driver error met while opening or setting up ``what`` (a registry, the sandbox's store), as the
        InputError a user reads: which database, the server's first line (not the SQL it quotes), and for a refusal
        of privileges, a read-only server or no schema, what to do."""
        kind = "SQLite" if self.dialect == "sqlite" else "PostgreSQL"
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = _REFUSALS.get(getattr(exc, "sqlstate", None) or "", "")
        if hint:
            hint = " (" + hint.format(user=urlsplit(str(self.target)).username or "the role") + ")"
        return InputError(f"not a usable {kind} {what}: {said}{hint}", file=self.where)

    def exists(self) -> bool:
        """A SQLite file exists; a PostgreSQL database is assumed to (connecting says otherwise)."""
        return self.path is None or self.path.is_file()

    def connect(self) -> Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Connection(self._open(), self.dialect, self)

    def release(self, conn: Connection) -> None:
        try:
            healthy = not conn.in_transaction
        except Exception:
            healthy = False
        with self._lock:
            if healthy and len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        try:
            conn.raw.close()
        except Exception:
            pass

    def dispose(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.raw.close()

    def _open(self) -> Any:
        if self.path is not None:
            try:  # another program's database is refused before WAL mode and our tables are written into it
                tables = sqlite_tables(self.path)
            except sqlite3.DatabaseError as exc:
                raise InputError(f"not a usable SQLite database: {exc}", file=self.path) from exc
            if tables and "schema_version" not in tables:
                raise InputError(f"this SQLite file is not a {self.what} (it has tables, none named "
                                 "schema_version): left as it was", file=self.path)
            private_dir(self.path.parent)
            create_private(self.path)
            try:
                db = sqlite3.connect(self.path, isolation_level=None, timeout=self.timeout, check_same_thread=False)
            except sqlite3.Error as exc:
                raise InputError(f"cannot open the database: {exc}", file=self.path) from exc
            try:
                db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as exc:
                db.close()
                raise InputError(f"not a usable SQLite database: {exc}", file=self.path) from exc
            return db
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise InputError("PostgreSQL needs the psycopg package (pip install 'psycopg[binary]')") from exc
        url = re.sub(r"^postgres(ql)?\+psycopg://", "postgresql://", str(self.target))
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=int(self.timeout))
        except psycopg.Error as exc:
            raise InputError(f"cannot connect to PostgreSQL {redact(url)}: {str(exc).strip()}") from exc
