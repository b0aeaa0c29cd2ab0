"""The registry's schema as ordered migration steps, on SQLite and PostgreSQL (runner: ``conformity.db.migrate``).

Steps 1-5 are the registry's SQLite history (kept as they were applied: an existing registry file is
upgraded through them); PostgreSQL support starts at step 5, whose PostgreSQL script creates the
schema those five steps produce (the baseline). From step 6 on, every step has both scripts:
6 gives labels an explicit issue order (SQLite's ``rowid`` has no PostgreSQL twin) and adds the
append-only feed of label events (CloudEvents, for the payment agency); 7 adds the service's
accounts, API tokens, web sessions, login failures, the append-only audit log, uploads and webhooks.
Append-only tables are guarded by triggers on both engines.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from conformity.db.connection import Connection
from conformity.db.migrate import Step
from conformity.db.migrate import migrate as run_steps

#: the registry's SQLite steps 1-5 (history: never edited)
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


def _forbid_pg(name: str, table: str, events: str, message: str, when: str = "") -> str:
    """A PostgreSQL trigger refusing an UPDATE/DELETE with ``message`` (the twin of SQLite's RAISE(ABORT))."""
    return (f"CREATE TRIGGER {name} BEFORE {events} ON {table} FOR EACH ROW "
            f"{f'WHEN ({when}) ' if when else ''}EXECUTE FUNCTION usine_forbid('{message}');\n")


def _forbid_sqlite(name: str, table: str, events: str, message: str, when: str = "") -> str:
    return (f"CREATE TRIGGER {name} BEFORE {events} ON {table} {f'WHEN {when} ' if when else ''}"
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END;\n")


def _unchangeable(forbid: Callable[[str, str, str, str], str], table: str, changed: str, deleted: str) -> str:
    """The pair of triggers refusing any UPDATE (``changed``) and any DELETE (``deleted``) of ``table``'s rows."""
    return (forbid(f"{table}_never_changed", table, "UPDATE", changed)
            + forbid(f"{table}_never_deleted", table, "DELETE", deleted))


def _append_only(forbid: Callable[[str, str, str, str], str], table: str, what: str) -> str:
    return _unchangeable(forbid, table, f"{what} is append-only", f"{what} is append-only")


def _never_changed_or_deleted(forbid: Callable[[str, str, str, str], str], table: str, what: str,
                              then: str = "") -> str:
    """``what is never changed`` / ``what is never deleted`` (``then`` appended to both)."""
    return _unchangeable(forbid, table, f"{what} is never changed{then}", f"{what} is never deleted{then}")


#: PostgreSQL: the schema of SQLite steps 1-5, at once (the same tables, constraints and guards)
PG_BASELINE = """
CREATE FUNCTION usine_forbid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation'; END $$;
CREATE TABLE submissions (
  id TEXT PRIMARY KEY, bundle_sha256 TEXT NOT NULL, bundle_name TEXT NOT NULL,
  vendor_id TEXT NOT NULL, vendor_name TEXT NOT NULL, software_id TEXT NOT NULL, software_name TEXT NOT NULL,
  version TEXT NOT NULL, wave TEXT NOT NULL, category TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('submitted', 'verified', 'pending', 'labelled', 'refused')),
  received TEXT NOT NULL, decided TEXT, decision TEXT, run_id TEXT);
CREATE INDEX submissions_scope ON submissions (wave, category, vendor_id);
CREATE INDEX submissions_bundle ON submissions (bundle_sha256);
CREATE UNIQUE INDEX submissions_run ON submissions (vendor_id, software_id, version, wave, category, run_id);
CREATE TABLE labels (
  label_id TEXT PRIMARY KEY, submission TEXT NOT NULL REFERENCES submissions(id),
  wave TEXT NOT NULL, category TEXT NOT NULL, vendor_id TEXT NOT NULL, software_id TEXT NOT NULL,
  version TEXT NOT NULL, issued TEXT NOT NULL, expires TEXT NOT NULL, doc TEXT NOT NULL,
  revoked TEXT, revoked_reason TEXT, signed TEXT,
  CHECK ((revoked IS NULL) = (revoked_reason IS NULL)));
CREATE INDEX labels_scope ON labels (wave, category);
CREATE INDEX labels_version ON labels (software_id, version, wave);
CREATE INDEX labels_submission ON labels (submission);
CREATE TABLE history (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at TEXT NOT NULL, subject TEXT NOT NULL,
  state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX history_subject ON history (subject, id);
CREATE TABLE results (
  submission TEXT NOT NULL REFERENCES submissions(id), requirement TEXT NOT NULL, level TEXT NOT NULL,
  method TEXT NOT NULL, verdict TEXT NOT NULL, PRIMARY KEY (submission, requirement));
CREATE INDEX results_requirement ON results (requirement, verdict);
CREATE TABLE evidence_blobs (sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE evidence (
  submission TEXT NOT NULL REFERENCES submissions(id), requirement TEXT NOT NULL, file TEXT NOT NULL,
  sha256 TEXT NOT NULL REFERENCES evidence_blobs(sha256), bytes INTEGER NOT NULL, media_type TEXT NOT NULL,
  PRIMARY KEY (submission, file));
CREATE TABLE reviews (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, submission TEXT NOT NULL REFERENCES submissions(id),
  requirement TEXT NOT NULL, level TEXT NOT NULL, method TEXT NOT NULL CHECK (method IN ('document', 'manual')),
  verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
  reason TEXT NOT NULL CHECK (length(trim(reason)) > 0), reviewer TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
  at TEXT NOT NULL, evidence TEXT NOT NULL);
CREATE INDEX reviews_submission ON reviews (submission, requirement, id);
CREATE TABLE reinstatements (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, label_id TEXT NOT NULL UNIQUE REFERENCES labels(label_id),
  at TEXT NOT NULL, reason TEXT NOT NULL CHECK (length(trim(reason)) > 0));
CREATE TABLE waivers (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, submission TEXT NOT NULL REFERENCES submissions(id),
  requirement TEXT NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
  decider TEXT NOT NULL CHECK (length(trim(decider)) > 0), at TEXT NOT NULL, UNIQUE (submission, requirement));
""" + _append_only(_forbid_pg, "history", "history") + "".join(_forbid_pg(*t) for t in (
    ("submissions_never_deleted", "submissions", "DELETE", "a submission is never deleted"),
    ("submissions_identity_never_changed", "submissions", "UPDATE OF id, bundle_sha256, bundle_name, vendor_id, "
     "vendor_name, software_id, software_name, version, wave, category, received, run_id",
     "what a submission is never changes"),
    ("submissions_refusal_final", "submissions", "UPDATE OF state, decided, decision", "a refused submission is final",
     "OLD.state = 'refused'"),
    ("labels_never_deleted", "labels", "DELETE", "a label is never deleted"),
    ("labels_never_changed", "labels", "UPDATE OF label_id, submission, wave, category, vendor_id, software_id, version, "
     "doc, issued, expires, signed", "a signed label is never changed"),
    ("labels_revoked_once", "labels", "UPDATE OF revoked, revoked_reason", "a label is revoked once",
     "OLD.revoked IS NOT NULL"))) + "".join(_never_changed_or_deleted(_forbid_pg, *t) for t in (
    ("evidence", "evidence"),
    ("evidence_blobs", "evidence"),
    ("reviews", "a review", ": record a new one, it supersedes"),
    ("reinstatements", "a reinstatement"),
    ("waivers", "a waiver")))


def _serial(dialect: str) -> str:
    return "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else \
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"


def _step6(dialect: str) -> str:
    """Labels in issue order (``seq``); the feed of label events (CloudEvents), append-only."""
    forbid = _forbid_sqlite if dialect == "sqlite" else _forbid_pg
    backfill = "UPDATE labels SET seq = rowid;\n" if dialect == "sqlite" else ""
    return (f"ALTER TABLE labels ADD COLUMN seq INTEGER;\n{backfill}"
            "CREATE UNIQUE INDEX labels_seq ON labels (seq);\n"
            f"CREATE TABLE events (seq {_serial(dialect)}, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, "
            "subject TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL);\n"
            + _append_only(forbid, "events", "the event feed"))


def _backfill_events(conn: Connection) -> None:
    """Label events for the labels issued (and revoked) before the feed existed, in issue order.

    Only labels of the current format are in the feed (a payer refuses the others by name); every
    revocation, of any label, stays in the signed revocation list.
    """
    import json

    from conformity.agency.feed import append_event, issued_event, revoked_event
    from conformity.labels import LABEL_FORMAT

    for label_id, signed, doc, revoked, reason in conn.execute(
            "SELECT label_id, signed, doc, revoked, revoked_reason FROM labels ORDER BY seq").fetchall():
        d = json.loads(doc)
        if signed is None or d.get("format") != LABEL_FORMAT:
            continue
        append_event(conn, issued_event(d, json.loads(signed)), webhooks=False)
        if revoked is not None:
            append_event(conn, revoked_event(conn, label_id, revoked, reason), webhooks=False)


def _then(ddl: str) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        conn.script(ddl)
        _backfill_events(conn)
    return run


def _step7(dialect: str) -> str:
    """The service: accounts, API tokens, web sessions, login failures, audit log, uploads, webhooks."""
    forbid = _forbid_sqlite if dialect == "sqlite" else _forbid_pg
    s = _serial(dialect)
    return f"""
CREATE TABLE accounts (
  id {s}, login TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('vendor', 'reviewer', 'decider', 'admin')),
  vendor_id TEXT, password_hash TEXT, created TEXT NOT NULL, disabled TEXT,
  CHECK ((role = 'vendor') = (vendor_id IS NOT NULL)));
CREATE TABLE api_tokens (
  id {s}, account INTEGER NOT NULL REFERENCES accounts(id), token_sha256 TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL, scopes TEXT NOT NULL, created TEXT NOT NULL, expires TEXT, revoked TEXT);
CREATE TABLE web_sessions (
  id_sha256 TEXT PRIMARY KEY, account INTEGER NOT NULL REFERENCES accounts(id), csrf TEXT NOT NULL,
  created TEXT NOT NULL, last_seen TEXT NOT NULL, expires TEXT NOT NULL, ended TEXT);
CREATE TABLE login_failures (id {s}, login TEXT NOT NULL, client TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX login_failures_login ON login_failures (login, at);
CREATE INDEX login_failures_client ON login_failures (client, at);
CREATE TABLE audit (
  id {s}, at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL,
  subject TEXT NOT NULL, detail TEXT NOT NULL, client TEXT NOT NULL);
CREATE INDEX audit_subject ON audit (subject, id);
CREATE TABLE uploads (
  id TEXT PRIMARY KEY, account INTEGER NOT NULL REFERENCES accounts(id), vendor_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('upload', 'witnessed')),
  state TEXT NOT NULL CHECK (state IN ('received', 'verifying', 'verified', 'refused')),
  file_name TEXT NOT NULL, sha256 TEXT, bytes INTEGER, received TEXT NOT NULL, updated TEXT NOT NULL,
  submission TEXT, outcome TEXT, findings TEXT, request TEXT);
CREATE INDEX uploads_vendor ON uploads (vendor_id, received);
CREATE INDEX uploads_state ON uploads (state, received);
CREATE TABLE webhooks (
  id {s}, url TEXT NOT NULL, secret TEXT NOT NULL, created TEXT NOT NULL, disabled TEXT);
CREATE TABLE deliveries (
  webhook INTEGER NOT NULL REFERENCES webhooks(id), event INTEGER NOT NULL REFERENCES events(seq),
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt TEXT NOT NULL, delivered TEXT, failed TEXT, last_error TEXT,
  PRIMARY KEY (webhook, event));
CREATE INDEX deliveries_due ON deliveries (delivered, failed, next_attempt);
""" + _append_only(forbid, "audit", "the audit log")


_WITNESSED = "ALTER TABLE uploads ADD COLUMN progress TEXT;"
#: when set, the account's password was set by someone else (an admin): its next sign-in changes it first
_PASSWORD_CHANGE = "ALTER TABLE accounts ADD COLUMN password_change_due TEXT;"
#: who last set the account's password for it (an admin, by reset or creation) and when; NULL: its owner, or the
#: server's operator (conformity.agency.persons: the four-eyes rule counts such an admin and the account as one)
_PASSWORD_SET_BY = ("ALTER TABLE accounts ADD COLUMN password_set_by TEXT;\n"
                    "ALTER TABLE accounts ADD COLUMN password_set_at TEXT;")
#: when the sweep deleted the upload's bundle (NULL: not yet); the sweep reads, by the partial index, only the rows
#: it may still have to purge (conformity.agency.service.uploads.purge_released)
_PURGED = ("ALTER TABLE uploads ADD COLUMN purged TEXT;\n"
           "CREATE INDEX uploads_unpurged ON uploads (state, updated) WHERE purged IS NULL;")

STEPS: tuple[Step, ...] = (
    Step("submissions, labels, history", MIGRATIONS[0], None),
    Step("results and review markers", MIGRATIONS[1], None),
    Step("labels kept as signed (JWS)", MIGRATIONS[2], None),
    Step("a submission is a run; evidence, reviews, reinstatements", MIGRATIONS[3], None),
    Step("waivers", MIGRATIONS[4], PG_BASELINE),
    Step("labels in issue order; the feed of label events", _then(_step6("sqlite")), _then(_step6("postgresql"))),
    Step("the service: accounts, tokens, sessions, audit log, uploads, webhooks", _step7("sqlite"),
         _step7("postgresql")),
    Step("witnessed runs: what the vendor asked and how far the run is", _WITNESSED, _WITNESSED),
    Step("passwords an admin set are changed at the next sign-in", _PASSWORD_CHANGE, _PASSWORD_CHANGE),
    Step("who set an account's password (four-eyes counts people)", _PASSWORD_SET_BY, _PASSWORD_SET_BY),
    Step("the upload sweep reads only the bundles it has not deleted", _PURGED, _PURGED),
)
SCHEMA_VERSION = len(STEPS)


def statements(script: str) -> list[str]:
    """Split a migration into complete SQL statements (triggers keep their inner semicolons)."""
    from conformity.db.connection import sqlite_statements

    return sqlite_statements(script)


def migrate(db: Connection | sqlite3.Connection, path: Path | str, target: int = SCHEMA_VERSION) -> int:
    """Apply the registry's missing steps up to ``target``; the resulting version. Refuses a newer registry."""
    conn = db if isinstance(db, Connection) else Connection(db, "sqlite")
    return run_steps(conn, STEPS, str(path), target=target)
