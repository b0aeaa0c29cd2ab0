"""The sandbox's state in SQLite: sessions, tokens, traces, service records, installations.

One connection guarded by a lock (SQLite serialises writers anyway); WAL journal so readers
never block. Every service record is scoped: a test session id, or ``prod`` for installations.
No secret is stored in clear: tokens are kept as their SHA-256 (``sandbox.credentials``) with a
display prefix, and the database is created 0600 in a 0700 folder (SQLite gives its WAL and
shared-memory files the database's mode).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from conformity.files import create_private, private_dir
from sandbox.credentials import display_prefix, secret_hash

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
"""
SCHEMA_VERSION = "2"


class Store:
    """Thread-safe access to the sandbox database."""

    def __init__(self, path: Path):
        private_dir(path.parent)
        create_private(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def _migrate(self) -> None:
        """Version 1 kept tokens and session secrets in clear: hash them in place (once, in one transaction)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            return
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != "1":
            return
        self._db.execute("PRAGMA secure_delete=ON")  # the clear values are overwritten, not just unlinked
        self._db.execute("BEGIN IMMEDIATE")
        try:
            old = self._db.execute("SELECT token, kind, scope, expires, data FROM tokens").fetchall()
            self._db.execute("DROP TABLE tokens")
            self._db.execute(TOKENS_TABLE)
            for token, kind, scope, expires, data in old:
                self._db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                                 (secret_hash(token), display_prefix(token), kind, scope, expires,
                                  json.dumps(_hashed_grant(json.loads(data)))))
            for sid, data in self._db.execute("SELECT id, data FROM sessions").fetchall():
                self._db.execute("UPDATE sessions SET data = ? WHERE id = ?",
                                 (json.dumps(hash_session_secrets(json.loads(data))), sid))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return json.loads(row[0]) if row else None

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def _run(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # sessions
    def put_session(self, session: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)",
                  (session["id"], session.get("created_ts", time.time()), json.dumps(session)))

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        return self._one("SELECT data FROM sessions WHERE id = ?", (session_id,))

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
        if not row:
            return None
        return json.loads(row[3]) | {"kind": row[0], "scope": row[1], "expired": row[2] < time.time()}

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
    def append_exchange(self, session_id: str, exchange: dict[str, Any]) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges WHERE session_id = ?",
                                   (session_id,)).fetchone()
            seq = row[0] + 1
            exchange = {"seq": seq, **exchange}
            self._db.execute("INSERT INTO exchanges VALUES (?, ?, ?)", (session_id, seq, json.dumps(exchange)))
        return seq

    def exchanges(self, session_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT data FROM exchanges WHERE session_id = ? ORDER BY seq", (session_id,))

    # service records (documents, messages, …), scoped by session id or "prod"
    def put_record(self, collection: str, scope: str, key: str, data: dict[str, Any]) -> None:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM records WHERE collection = ? AND scope = ?",
                                   (collection, scope)).fetchone()
            old = self._db.execute("SELECT seq FROM records WHERE collection = ? AND scope = ? AND key = ?",
                                   (collection, scope, key)).fetchone()
            seq = old[0] if old else row[0] + 1
            self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                             (collection, scope, key, seq, json.dumps(data)))

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
