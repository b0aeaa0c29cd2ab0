"""The registry's schema as ordered migration steps; ``schema_version`` says how many have been applied.

Opening an older registry applies the missing steps, each in its own ``BEGIN IMMEDIATE`` transaction
(the version is re-read inside it, so concurrent openers never apply a step twice); a registry newer
than this code is refused. Steps are only ever appended, never edited.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conformity.errors import InputError

MIGRATIONS: tuple[str, ...] = (
    # 1: submissions, labels and the append-only history of their states
    """
CREATE TABLE submissions (
  id TEXT PRIMARY KEY, bundle_sha256 TEXT NOT NULL UNIQUE, bundle_name TEXT NOT NULL,
  vendor_id TEXT NOT NULL, vendor_name TEXT NOT NULL, software_id TEXT NOT NULL, software_name TEXT NOT NULL,
  version TEXT NOT NULL, wave TEXT NOT NULL, category TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('submitted', 'verified', 'labelled', 'refused')),
  received TEXT NOT NULL, decided TEXT, decision TEXT);
CREATE INDEX submissions_scope ON submissions (wave, category, vendor_id);
CREATE TABLE labels (
  label_id TEXT PRIMARY KEY, submission TEXT NOT NULL UNIQUE REFERENCES submissions(id),
  wave TEXT NOT NULL, category TEXT NOT NULL, vendor_id TEXT NOT NULL, software_id TEXT NOT NULL,
  version TEXT NOT NULL, issued TEXT NOT NULL, expires TEXT NOT NULL, doc TEXT NOT NULL,
  revoked TEXT, revoked_reason TEXT,
  CHECK ((revoked IS NULL) = (revoked_reason IS NULL)));
CREATE INDEX labels_scope ON labels (wave, category);
CREATE TABLE history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE INDEX history_subject ON history (subject, id);
CREATE TRIGGER history_never_changed BEFORE UPDATE ON history
  BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
CREATE TRIGGER history_never_deleted BEFORE DELETE ON history
  BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
CREATE TRIGGER submissions_never_deleted BEFORE DELETE ON submissions
  BEGIN SELECT RAISE(ABORT, 'a submission is never deleted'); END;
CREATE TRIGGER labels_never_deleted BEFORE DELETE ON labels
  BEGIN SELECT RAISE(ABORT, 'a label is never deleted'); END;
CREATE TRIGGER labels_never_changed BEFORE UPDATE OF label_id, submission, doc, issued, expires ON labels
  BEGIN SELECT RAISE(ABORT, 'a signed label is never changed'); END;
CREATE TRIGGER labels_revoked_once BEFORE UPDATE OF revoked, revoked_reason ON labels WHEN OLD.revoked IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'a label is revoked once'); END;
""",
    # 2: per-requirement results (pass rates) and pending document/manual reviews, backfilled from decisions
    """
CREATE TABLE results (
  submission TEXT NOT NULL REFERENCES submissions(id), requirement TEXT NOT NULL, level TEXT NOT NULL,
  method TEXT NOT NULL, verdict TEXT NOT NULL, PRIMARY KEY (submission, requirement)) WITHOUT ROWID;
CREATE INDEX results_requirement ON results (requirement, verdict);
CREATE TABLE reviews (
  label_id TEXT NOT NULL REFERENCES labels(label_id), requirement TEXT NOT NULL, level TEXT NOT NULL,
  method TEXT NOT NULL, evidence TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'rejected')),
  PRIMARY KEY (label_id, requirement)) WITHOUT ROWID;
INSERT INTO results (submission, requirement, level, method, verdict)
  SELECT s.id, json_extract(r.value, '$.id'), json_extract(r.value, '$.level'), json_extract(r.value, '$.method'),
         json_extract(r.value, '$.verdict')
  FROM submissions s, json_each(s.decision, '$.requirements') r WHERE s.decision IS NOT NULL;
INSERT INTO reviews (label_id, requirement, level, method, evidence)
  SELECT l.label_id, json_extract(r.value, '$.id'), json_extract(r.value, '$.level'),
         json_extract(r.value, '$.method'), coalesce(json_extract(r.value, '$.evidence'), '')
  FROM labels l JOIN submissions s ON s.id = l.submission, json_each(s.decision, '$.pending_reviews') r;
""",
    # 3: labels kept as signed (JWS) beside their payload; labels signed before (old envelope) have none
    """
ALTER TABLE labels ADD COLUMN signed TEXT;
CREATE TRIGGER labels_signed_never_changed BEFORE UPDATE OF signed ON labels
  BEGIN SELECT RAISE(ABORT, 'a signed label is never changed'); END;
""",
)
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    """Split a migration into complete SQL statements (triggers keep their inner semicolons)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {buf.strip()[:80]}")
    return out


def current_version(db: sqlite3.Connection, path: Path) -> int:
    """The applied version (0 for an empty database); refuses a database that is not a registry."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables:
        if tables:
            raise InputError("this SQLite file is not a usine registry (no schema_version table)", file=path)
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection, path: Path, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing steps up to ``target``; the resulting version. Refuses a newer registry."""
    version = current_version(db, path)
    if version > SCHEMA_VERSION:
        raise InputError(f"registry schema version {version} is newer than this usine knows ({SCHEMA_VERSION}); "
                         "use a newer usine", file=path)
    while version < target:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(db, path)  # another process may have migrated meanwhile
            if version < target:
                if version == 0:
                    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
                for sql in statements(MIGRATIONS[version]):
                    db.execute(sql)
                version += 1
                db.execute("INSERT INTO schema_version VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))", (version,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return version
