"""The registry's schema as ordered migration steps; ``schema_version`` says how many have been applied.

Opening an older registry applies the missing steps, each in its own ``BEGIN IMMEDIATE`` transaction
(the version is re-read inside it, so concurrent openers never apply a step twice); a registry newer
than this code is refused. Steps are only ever appended, never edited. A step may rebuild a table
(SQLite cannot change a constraint in place): foreign keys are off while it runs, as SQLite's own
procedure asks, and ``PRAGMA foreign_key_check`` must find nothing before it commits.
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
    # 4: a submission is a run, not a zip: identity (vendor, software, version, wave, category, run id) unique,
    #    the bundle's hash only informative; a run may wait for reviews ('pending'); evidence files, reviews
    #    (append-only, the latest counts) and reinstatements; a run whose version was reinstated may hold a
    #    new label (labels.submission no longer unique). Submissions recorded before have no run id. The
    #    pending-review markers of step 2 are dropped: they repeat submissions.decision's pending_reviews.
    """
CREATE TABLE submissions_v4 (
  id TEXT PRIMARY KEY, bundle_sha256 TEXT NOT NULL, bundle_name TEXT NOT NULL,
  vendor_id TEXT NOT NULL, vendor_name TEXT NOT NULL, software_id TEXT NOT NULL, software_name TEXT NOT NULL,
  version TEXT NOT NULL, wave TEXT NOT NULL, category TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('submitted', 'verified', 'pending', 'labelled', 'refused')),
  received TEXT NOT NULL, decided TEXT, decision TEXT, run_id TEXT);
INSERT INTO submissions_v4 (id, bundle_sha256, bundle_name, vendor_id, vendor_name, software_id, software_name,
                            version, wave, category, state, received, decided, decision, run_id)
  SELECT id, bundle_sha256, bundle_name, vendor_id, vendor_name, software_id, software_name, version, wave,
         category, state, received, decided, decision, NULL FROM submissions;
DROP TABLE submissions;
ALTER TABLE submissions_v4 RENAME TO submissions;
CREATE INDEX submissions_scope ON submissions (wave, category, vendor_id);
CREATE INDEX submissions_bundle ON submissions (bundle_sha256);
CREATE UNIQUE INDEX submissions_run ON submissions (vendor_id, software_id, version, wave, category, run_id);
CREATE TRIGGER submissions_never_deleted BEFORE DELETE ON submissions
  BEGIN SELECT RAISE(ABORT, 'a submission is never deleted'); END;
CREATE TRIGGER submissions_identity_never_changed BEFORE UPDATE OF id, bundle_sha256, bundle_name, vendor_id,
  vendor_name, software_id, software_name, version, wave, category, received, run_id ON submissions
  BEGIN SELECT RAISE(ABORT, 'what a submission is never changes'); END;
CREATE TRIGGER submissions_refusal_final BEFORE UPDATE OF state, decided, decision ON submissions
  WHEN OLD.state = 'refused'
  BEGIN SELECT RAISE(ABORT, 'a refused submission is final'); END;
CREATE TABLE labels_v4 (
  label_id TEXT PRIMARY KEY, submission TEXT NOT NULL REFERENCES submissions(id),
  wave TEXT NOT NULL, category TEXT NOT NULL, vendor_id TEXT NOT NULL, software_id TEXT NOT NULL,
  version TEXT NOT NULL, issued TEXT NOT NULL, expires TEXT NOT NULL, doc TEXT NOT NULL,
  revoked TEXT, revoked_reason TEXT, signed TEXT,
  CHECK ((revoked IS NULL) = (revoked_reason IS NULL)));
INSERT INTO labels_v4 (label_id, submission, wave, category, vendor_id, software_id, version, issued, expires, doc,
                       revoked, revoked_reason, signed)
  SELECT label_id, submission, wave, category, vendor_id, software_id, version, issued, expires, doc, revoked,
         revoked_reason, signed FROM labels ORDER BY rowid;
DROP TABLE reviews;
DROP TABLE labels;
ALTER TABLE labels_v4 RENAME TO labels;
CREATE INDEX labels_scope ON labels (wave, category);
CREATE INDEX labels_version ON labels (software_id, version, wave);
CREATE INDEX labels_submission ON labels (submission);
CREATE TRIGGER labels_never_deleted BEFORE DELETE ON labels
  BEGIN SELECT RAISE(ABORT, 'a label is never deleted'); END;
CREATE TRIGGER labels_never_changed BEFORE UPDATE OF label_id, submission, wave, category, vendor_id, software_id,
  version, doc, issued, expires, signed ON labels
  BEGIN SELECT RAISE(ABORT, 'a signed label is never changed'); END;
CREATE TRIGGER labels_revoked_once BEFORE UPDATE OF revoked, revoked_reason ON labels WHEN OLD.revoked IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'a label is revoked once'); END;
CREATE TABLE evidence_blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE evidence (
  submission TEXT NOT NULL REFERENCES submissions(id), requirement TEXT NOT NULL, file TEXT NOT NULL,
  sha256 TEXT NOT NULL REFERENCES evidence_blobs(sha256), bytes INTEGER NOT NULL, media_type TEXT NOT NULL,
  PRIMARY KEY (submission, file)) WITHOUT ROWID;
CREATE TABLE reviews (
  id INTEGER PRIMARY KEY AUTOINCREMENT, submission TEXT NOT NULL REFERENCES submissions(id),
  requirement TEXT NOT NULL, level TEXT NOT NULL, method TEXT NOT NULL CHECK (method IN ('document', 'manual')),
  verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
  reason TEXT NOT NULL CHECK (length(trim(reason)) > 0), reviewer TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
  at TEXT NOT NULL, evidence TEXT NOT NULL);
CREATE INDEX reviews_submission ON reviews (submission, requirement, id);
CREATE TABLE reinstatements (
  id INTEGER PRIMARY KEY AUTOINCREMENT, label_id TEXT NOT NULL UNIQUE REFERENCES labels(label_id),
  at TEXT NOT NULL, reason TEXT NOT NULL CHECK (length(trim(reason)) > 0));
CREATE TRIGGER evidence_never_changed BEFORE UPDATE ON evidence
  BEGIN SELECT RAISE(ABORT, 'evidence is never changed'); END;
CREATE TRIGGER evidence_never_deleted BEFORE DELETE ON evidence
  BEGIN SELECT RAISE(ABORT, 'evidence is never deleted'); END;
CREATE TRIGGER evidence_blobs_never_changed BEFORE UPDATE ON evidence_blobs
  BEGIN SELECT RAISE(ABORT, 'evidence is never changed'); END;
CREATE TRIGGER evidence_blobs_never_deleted BEFORE DELETE ON evidence_blobs
  BEGIN SELECT RAISE(ABORT, 'evidence is never deleted'); END;
CREATE TRIGGER reviews_never_changed BEFORE UPDATE ON reviews
  BEGIN SELECT RAISE(ABORT, 'a review is never changed: record a new one, it supersedes'); END;
CREATE TRIGGER reviews_never_deleted BEFORE DELETE ON reviews
  BEGIN SELECT RAISE(ABORT, 'a review is never deleted: record a new one, it supersedes'); END;
CREATE TRIGGER reinstatements_never_changed BEFORE UPDATE ON reinstatements
  BEGIN SELECT RAISE(ABORT, 'a reinstatement is never changed'); END;
CREATE TRIGGER reinstatements_never_deleted BEFORE DELETE ON reinstatements
  BEGIN SELECT RAISE(ABORT, 'a reinstatement is never deleted'); END;
""",
    # 5: waivers: automated MUST requirements the agency explicitly waived for a run (never changed or deleted)
    """
CREATE TABLE waivers (
  id INTEGER PRIMARY KEY AUTOINCREMENT, submission TEXT NOT NULL REFERENCES submissions(id),
  requirement TEXT NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
  decider TEXT NOT NULL CHECK (length(trim(decider)) > 0), at TEXT NOT NULL, UNIQUE (submission, requirement));
CREATE TRIGGER waivers_never_changed BEFORE UPDATE ON waivers
  BEGIN SELECT RAISE(ABORT, 'a waiver is never changed'); END;
CREATE TRIGGER waivers_never_deleted BEFORE DELETE ON waivers
  BEGIN SELECT RAISE(ABORT, 'a waiver is never deleted'); END;
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
    foreign_keys = db.execute("PRAGMA foreign_keys").fetchone()[0]
    while version < target:
        db.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set before it begins
        db.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(db, path)  # another process may have migrated meanwhile
            if version < target:
                if version == 0:
                    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
                for sql in statements(MIGRATIONS[version]):
                    db.execute(sql)
                broken = db.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise InputError(f"migration {version + 1} would leave {len(broken)} broken reference(s), e.g. "
                                     f"{broken[0][0]} row {broken[0][1]} → {broken[0][2]}; not applied", file=path)
                version += 1
                db.execute("INSERT INTO schema_version VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))", (version,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    return version
