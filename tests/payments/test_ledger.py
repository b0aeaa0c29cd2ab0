"""The ledger's schema enforces "nothing paid twice" by itself, whatever code writes to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conformity.payments.ledger import Ledger
from conformity.payments.ledger_schema import SCHEMA_VERSION
from conformity.payments.store import recorded_events
from tests.payments.builders import events_for, installation
from tests.payments.workspace import Workspace


@pytest.fixture
def paid_ledger(ws: Workspace) -> Path:
    ws.label()
    ws.run_inproc(ws.events("e.jsonl", events_for(installation("750100011"), 5)
                            + events_for(installation("690200022"), 5)))
    return ws.ledger


def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    return db


def test_a_second_payment_for_an_installation_is_refused_by_the_schema(paid_ledger: Path) -> None:
    db = _db(paid_ledger)
    cols = "installation, wave, software_id, site_id, vendor_id, vendor_name, software_name, site_name, category, " \
           "site_size, amount_cents, currency, label_id, qualified_time, run, created"
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute(f"INSERT INTO payments ({cols}) SELECT {cols} FROM payments LIMIT 1")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # same (wave, software, site), other row
        db.execute(f"INSERT INTO payments ({cols}) SELECT 999, wave, software_id, site_id, vendor_id, vendor_name, "
                   "software_name, site_name, category, site_size, amount_cents, currency, label_id, "
                   "qualified_time, run, created FROM payments LIMIT 1")


def test_payments_and_their_proofs_are_never_deleted_or_changed(paid_ledger: Path) -> None:
    db = _db(paid_ledger)
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        db.execute("DELETE FROM payments")
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        db.execute("UPDATE payments SET amount_cents = amount_cents * 2")
    with pytest.raises(sqlite3.IntegrityError, match="ordered once"):
        db.execute("UPDATE payments SET batch = NULL, iban = NULL")
    with pytest.raises(sqlite3.IntegrityError, match="never"):
        db.execute("DELETE FROM payment_events")
    assert db.execute("SELECT count(*) FROM payments").fetchone()[0] == 2


def test_an_event_proves_one_payment_and_is_recorded_once(paid_ledger: Path) -> None:
    db = _db(paid_ledger)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute("INSERT INTO payment_events SELECT (SELECT max(id) FROM payments), 99, source, id, time_us, "
                   "label_id, body FROM payment_events WHERE payment = (SELECT min(id) FROM payments) LIMIT 1")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):  # the events seen: columnar, registered
        db.execute("DELETE FROM event_files")
    events = recorded_events(paid_ledger)
    assert len(events) == 10 and len({(e[0], e[1]) for e in events}) == 10


def test_the_schema_is_versioned(paid_ledger: Path, ws: Workspace) -> None:
    db = _db(paid_ledger)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    r = ws.run(ws.events("e2.jsonl", []))
    assert r.returncode == 2 and f"ledger schema version {SCHEMA_VERSION + 1} is newer" in r.stderr


def test_another_sqlite_file_is_not_taken_for_a_ledger(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(Exception, match="not a usine payment ledger"):
        Ledger(other)


def test_one_run_at_a_time(tmp_path: Path) -> None:
    from conformity.payments.ledger import LedgerBusy

    with Ledger(tmp_path / "l.sqlite3"), pytest.raises(LedgerBusy):
        Ledger(tmp_path / "l.sqlite3")
    with Ledger(tmp_path / "l.sqlite3") as again:  # released when the first closes
        assert again.counts()["payments"] == 0


def test_a_ledger_of_an_earlier_version_keeps_the_events_it_recorded(ws: Workspace) -> None:
    """Schema 2 kept events as rows of `events`: the first run on the event store adopts them, pays nothing twice."""
    import shutil

    from conformity.payments.store import store_dir

    ws.label()
    f = ws.events("e.jsonl", events_for(installation("750100011"), 5) + events_for(installation("690200022"), 3))
    first = ws.run(f)
    assert first.returncode == 0, first.stderr
    events = recorded_events(ws.ledger)
    db = _db(ws.ledger)  # as schema 2 left it: the events in SQLite, no event files
    db.execute("DROP TRIGGER event_files_never_deleted")
    db.execute("DELETE FROM event_files")
    db.executemany("INSERT INTO events (source, id, digest, time_us, outcome, installation, label, run, file, line) "
                   "SELECT ?, ?, ?, ?, ?, i.id, NULL, 1, 1, 1 FROM installations i WHERE i.site_id = ?",
                   [(*e, "750100011" if "750100011" in e[1] else "690200022") for e in events])
    db.close()
    shutil.rmtree(store_dir(ws.ledger))
    again = ws.run(f)
    assert again.returncode == 0, again.stderr
    assert again.summary["installations_paid"] == 0
    assert again.reasons() == {"duplicate-event": 8}
    assert sorted(recorded_events(ws.ledger)) == sorted(events)
