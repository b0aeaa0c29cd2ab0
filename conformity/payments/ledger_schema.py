"""The ledger's SQLite schema, one migration per version (applied in order, each in its own transaction)."""

from __future__ import annotations

SCHEMA_VERSION = 3

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY, wave TEXT NOT NULL, as_of TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
  inputs TEXT NOT NULL, summary TEXT);
CREATE TABLE files (id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id), path TEXT NOT NULL,
  UNIQUE (run, path));
CREATE TABLE labels (
  id INTEGER PRIMARY KEY, label_id TEXT NOT NULL UNIQUE, vendor_id TEXT NOT NULL, vendor_name TEXT NOT NULL,
  software_id TEXT NOT NULL, software_name TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE installations (
  id INTEGER PRIMARY KEY, wave TEXT NOT NULL, software_id TEXT NOT NULL, site_id TEXT NOT NULL,
  installation_ref TEXT NOT NULL, vendor_id TEXT NOT NULL, category TEXT NOT NULL, site_size TEXT NOT NULL,
  software_name TEXT NOT NULL, site_name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'qualified', 'cap-reached', 'paid')),
  counted INTEGER NOT NULL DEFAULT 0 CHECK (counted >= 0),
  best INTEGER NOT NULL DEFAULT 0 CHECK (best >= 0),
  q_time INTEGER, q_source TEXT, q_id TEXT,
  first_run INTEGER NOT NULL REFERENCES runs(id),
  UNIQUE (wave, software_id, site_id),
  CHECK ((status = 'pending') = (q_time IS NULL)));
CREATE INDEX installations_due ON installations (wave, q_time, q_source, q_id, id)
  WHERE status IN ('qualified', 'cap-reached');
CREATE TABLE events (
  source TEXT NOT NULL, id TEXT NOT NULL, digest BLOB NOT NULL, time_us INTEGER NOT NULL,
  outcome TEXT NOT NULL, installation INTEGER, label INTEGER,
  run INTEGER NOT NULL, file INTEGER NOT NULL, line INTEGER NOT NULL,
  PRIMARY KEY (source, id),
  CHECK ((outcome IN ('counted', 'after-payment')) = (installation IS NOT NULL))) WITHOUT ROWID;
CREATE TABLE candidates (
  installation INTEGER NOT NULL REFERENCES installations(id), time_us INTEGER NOT NULL,
  source TEXT NOT NULL, id TEXT NOT NULL, label INTEGER NOT NULL REFERENCES labels(id), body TEXT NOT NULL,
  PRIMARY KEY (installation, time_us, source, id)) WITHOUT ROWID;
CREATE TABLE batches (
  id INTEGER PRIMARY KEY, wave TEXT NOT NULL, msg_id TEXT NOT NULL UNIQUE, run INTEGER NOT NULL REFERENCES runs(id),
  created TEXT NOT NULL, execution_date TEXT NOT NULL, payer TEXT NOT NULL,
  transactions INTEGER NOT NULL CHECK (transactions > 0), total_cents INTEGER NOT NULL CHECK (total_cents > 0),
  written TEXT);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY, installation INTEGER NOT NULL UNIQUE REFERENCES installations(id),
  wave TEXT NOT NULL, software_id TEXT NOT NULL, site_id TEXT NOT NULL, vendor_id TEXT NOT NULL,
  vendor_name TEXT NOT NULL, software_name TEXT NOT NULL, site_name TEXT NOT NULL,
  category TEXT NOT NULL, site_size TEXT NOT NULL,
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0), currency TEXT NOT NULL,
  label_id TEXT NOT NULL, qualified_time INTEGER NOT NULL, run INTEGER NOT NULL REFERENCES runs(id),
  created TEXT NOT NULL,
  batch INTEGER REFERENCES batches(id), creditor_name TEXT, iban TEXT, bic TEXT,
  UNIQUE (wave, software_id, site_id),
  CHECK ((batch IS NULL) = (iban IS NULL)));
CREATE INDEX payments_software ON payments (wave, software_id);
CREATE INDEX payments_batch ON payments (batch, id);
CREATE TABLE payment_events (
  payment INTEGER NOT NULL REFERENCES payments(id), position INTEGER NOT NULL,
  source TEXT NOT NULL, id TEXT NOT NULL, time_us INTEGER NOT NULL, label_id TEXT NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (payment, position), UNIQUE (source, id));
CREATE TRIGGER payments_never_deleted BEFORE DELETE ON payments
  BEGIN SELECT RAISE(ABORT, 'a payment is never deleted'); END;
CREATE TRIGGER payments_never_changed BEFORE UPDATE OF id, installation, wave, software_id, site_id, vendor_id,
  amount_cents, currency, label_id, run ON payments
  BEGIN SELECT RAISE(ABORT, 'a payment is never changed'); END;
CREATE TRIGGER payments_ordered_once BEFORE UPDATE OF batch, iban, bic, creditor_name ON payments
  WHEN OLD.batch IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'a payment is ordered once'); END;
CREATE TRIGGER payment_events_never_changed BEFORE UPDATE ON payment_events
  BEGIN SELECT RAISE(ABORT, 'the proof of a payment is never changed'); END;
CREATE TRIGGER payment_events_never_deleted BEFORE DELETE ON payment_events
  BEGIN SELECT RAISE(ABORT, 'the proof of a payment is never deleted'); END;
""",
    2: """
CREATE TABLE lease (
  id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, run INTEGER REFERENCES runs(id),
  pid INTEGER NOT NULL, host TEXT NOT NULL, boot TEXT NOT NULL, process_start TEXT NOT NULL,
  started TEXT NOT NULL, heartbeat TEXT NOT NULL);
""",    3: """
CREATE TABLE event_files (
  seq INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id), name TEXT NOT NULL UNIQUE,
  rows INTEGER NOT NULL CHECK (rows > 0), new_events INTEGER NOT NULL CHECK (new_events >= 0));
CREATE TRIGGER event_files_never_deleted BEFORE DELETE ON event_files
  BEGIN SELECT RAISE(ABORT, 'recorded events are never deleted'); END;
""",
}
