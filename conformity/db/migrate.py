"""Ordered migration steps on SQLite and PostgreSQL; ``schema_version`` says how many have been applied.

A step has a script for each engine (SQL, or a function of the connection for data moves). Steps are
only ever appended, never edited. Opening an older database applies the missing steps, each in its
own serialised write transaction (the version is re-read inside it, so concurrent openers — several
service workers starting at once — never apply a step twice); a database newer than the code is
refused. A step that predates PostgreSQL support has no PostgreSQL script: the first step that has
one creates that engine's whole schema as of that version (its baseline), so both engines reach the
same numbered versions with the same tables. On SQLite a step may rebuild a table (SQLite cannot
change a constraint in place): foreign keys are off while it runs, as SQLite's own procedure asks, and
``PRAGMA foreign_key_check`` must find nothing before it commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conformity.db.connection import Connection
from conformity.errors import InputError

Script = str | Callable[[Connection], None] | None


@dataclass(frozen=True, slots=True)
class Step:
    """One migration step: what it does, and its script on each engine (None: covered by a later baseline)."""

    description: str
    sqlite: Script
    postgresql: Script


def _tables(conn: Connection) -> set[str]:
    if conn.dialect == "sqlite":
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = current_schema()")}


def current_version(conn: Connection, where: str, what: str = "usine registry") -> int:
    """The applied version (0 for an empty database); refuses a database that is not one of ours."""
    tables = _tables(conn)
    if "schema_version" not in tables:
        if tables:
            kind = "SQLite file" if conn.dialect == "sqlite" else "database"
            raise InputError(f"this {kind} is not a {what} (no schema_version table)", file=where)
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _run(conn: Connection, script: Script) -> None:
    if script is None:
        return
    if callable(script):
        script(conn)
    else:
        conn.script(script)


def migrate(conn: Connection, steps: Sequence[Step], where: str, *, target: int | None = None,
            what: str = "usine registry") -> int:
    """Apply the missing steps up to ``target`` (default: all); the resulting version. Refuses a newer database."""
    target = len(steps) if target is None else target
    version = current_version(conn, where, what)
    if version > len(steps):
        raise InputError(f"{what} schema version {version} is newer than this usine knows ({len(steps)}); "
                         "use a newer usine", file=where)
    sqlite = conn.dialect == "sqlite"
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0] if sqlite else 0
    while version < target:
        if sqlite:
            conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set before it begins
        conn.begin()
        try:
            version = current_version(conn, where, what)  # another process may have migrated meanwhile
            if version < target:
                if version == 0:
                    conn.script("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                                "applied TEXT NOT NULL)")
                step = steps[version]
                _run(conn, step.sqlite if sqlite else step.postgresql)
                if sqlite:
                    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise InputError(f"migration {version + 1} would leave {len(broken)} broken reference(s), "
                                         f"e.g. {broken[0][0]} row {broken[0][1]} → {broken[0][2]}; not applied",
                                         file=where)
                version += 1
                applied = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                conn.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, applied))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if sqlite:
                conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    return version
