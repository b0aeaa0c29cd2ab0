"""What one session and one vendor can make the sandbox record — trace entries, stored documents, messages — is
bounded: beyond a session's bound its requests and its harness's notes are refused 413 ``session-recording-full``
and nothing of them is recorded (the trace stays verifiable, whole up to the bound); beyond a vendor's bound its
software opens no new session (429). Counted by the store itself as it writes (triggers), on SQLite and
PostgreSQL: no statement more per request."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformity.signing import KeyRing, VerifyKey, verify_document
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.store import BoundReached, Store, run_binding
from tests.sandbox.helpers import ADMIN_TOKEN
from tests.sandbox.test_harness_tokens import issue

ACME = run_binding({"vendor_id": "acme", "software_id": "acme.ehr"})


def test_the_store_counts_what_each_session_records(stores: tuple[Store, Store]) -> None:
    a, b = stores
    a.put_session({"id": "ses_1", "state": "open"})  # an exchange is a stored session's only
    assert a.recorded_bytes("ses_1") == 0
    note = {"kind": "note", "data": {"x": "é" * 100}}
    assert a.append_exchange("ses_1", note) == 1
    b.append_exchange_text("ses_1", '{"kind":"note","data":{}}')
    a.put_record("docs", "ses_1", "k1", {"document": "x" * 1000})
    texts = [json.dumps({"seq": 1} | note), '{"seq":2,"kind":"note","data":{}}', json.dumps({"document": "x" * 1000})]
    # the bytes stored (the engines write a first exchange's "seq" member with or without a space after its colon)
    assert abs(b.recorded_bytes("ses_1") - sum(len(t.encode()) for t in texts)) <= 2
    before = a.recorded_bytes("ses_1")
    b.put_record("docs", "ses_1", "k1", {"document": "x" * 10})  # a record replaced: its new size counts
    assert a.recorded_bytes("ses_1") == before - 990
    a.put_record("docs", "prod", "k", {"document": "x" * 1000})  # the production role's: no session's
    assert a.recorded_bytes("prod") == 0 and a.recorded_bytes("ses_2") == 0


def test_a_vendor_over_its_recorded_bytes_opens_no_session(stores: tuple[Store, Store]) -> None:
    later = time.time() + 600
    stores[0].put_session({"id": "ses_big", "created_ts": time.time() - 10, "state": "open", "faults": {}})
    stores[0].admit_session(ACME, "ses_big", later, 10, max_bytes=5000)
    stores[1].put_record("docs", "ses_big", "k", {"document": "x" * 6000})
    with pytest.raises(BoundReached) as reached:
        stores[1].admit_session(ACME, "ses_next", later, 10, max_bytes=5000)
    assert reached.value.bound.what == "recorded-bytes"
    stores[0].admit_session(run_binding({"vendor_id": "other", "software_id": "other.x"}), "ses_o", later, 10,
                            max_bytes=5000)
    stores[0].end_session("ses_big")  # closed: its data still counts until swept
    with pytest.raises(BoundReached):
        stores[0].admit_session(ACME, "ses_next", later, 10, max_bytes=5000)
    assert stores[0].sweep_sessions(time.time()) == 1  # swept: what it kept no longer counts
    stores[0].admit_session(ACME, "ses_next", later, 10, max_bytes=5000)


def _recording_bounded(request: pytest.FixtureRequest, tmp_path: Path, vendor_bytes: int) -> Iterator[RunningSandbox]:
    """A sandbox on the fixture's engine whose sessions may record 40 kB and whose vendors ``vendor_bytes``."""
    database = None if request.param == "sqlite" else request.getfixturevalue("postgresql_url")
    config = SandboxConfig(data_dir=tmp_path, admin_token=ADMIN_TOKEN, database=database,
                           session_recorded_bytes=40_000, vendor_recorded_bytes=vendor_bytes)
    with start_in_thread(config) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningSandbox]:
    yield from _recording_bounded(request, tmp_path, 60_000)


def test_a_full_session_is_refused_and_its_trace_verifies(small: RunningSandbox) -> None:
    from sandbox.packs.health.samples import issue_access_token

    with httpx.Client(base_url=small.base_url, timeout=30) as client, \
            httpx.Client(base_url=small.base_url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme, other = issue(admin, "acme", "acme.ehr"), issue(admin, "other", "other.ehr")
        session = client.post("/admin/sessions", json={"seed": 1}, headers=acme).json()
        sid = session["session_id"]
        store = small.server.config.app.state.store
        token = issue_access_token(store, sid, session["fixtures"]["practitioners"][0]["national_id"])
        url, auth = f"/s/{sid}/insi/lookup", {"Authorization": f"Bearer {token}"}
        statuses = []
        for _ in range(40):  # ~1.5 kB recorded each
            statuses.append(client.post(url, json={"padding": "p" * 1000}, headers=auth).status_code)
            if statuses[-1] == 413:
                break
        assert statuses[-1] == 413 and set(statuses[:-1]) == {422}, statuses
        r = client.post(url, json={}, headers=auth)
        assert r.status_code == 413 and r.json()["code"] == "session-recording-full"
        assert r.json()["limit"] == 40_000
        note = client.post(f"/admin/sessions/{sid}/notes", json={"kind": "step", "data": {}}, headers=acme)
        assert note.status_code == 413 and note.json()["code"] == "session-recording-full"
        trace = client.get(f"/admin/sessions/{sid}/trace", headers=acme)
        keys = KeyRing(VerifyKey.from_jwk(k) for k in client.get("/.well-known/usine-trace-keys").json()["keys"])
        payload: dict[str, Any] = verify_document(trace.json(), keys)
        exchanges = payload["exchanges"]
        assert len(exchanges) == len(statuses) - 1  # every request served is in it, the refused ones are not
        assert [e["seq"] for e in exchanges] == list(range(1, len(exchanges) + 1))
        assert all(e["response"]["status"] == 422 for e in exchanges)
        # the vendor is past its own bound too (60 kB, this session ~40): one more session would take it further
        second = client.post("/admin/sessions", json={"seed": 2}, headers=acme)
        assert second.status_code == 201, second.text
        sid2 = second.json()["session_id"]
        token2 = issue_access_token(store, sid2, second.json()["fixtures"]["practitioners"][0]["national_id"])
        for _ in range(40):
            if client.post(f"/s/{sid2}/insi/lookup", json={"padding": "p" * 1000},
                           headers={"Authorization": f"Bearer {token2}"}).status_code == 413:
                break
        refused = client.post("/admin/sessions", json={"seed": 3}, headers=acme)
        assert refused.status_code == 429 and refused.json()["bound"] == "recorded-bytes", refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert client.post("/admin/sessions", json={"seed": 3}, headers=other).status_code == 201


@pytest.fixture(params=["sqlite", "postgresql"])
def tight(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningSandbox]:
    """A sandbox whose vendors may record 20 kB (one session's 40 kB would pass it)."""
    yield from _recording_bounded(request, tmp_path, 20_000)


def test_a_vendor_over_its_recorded_bytes_is_told_when_its_first_session_is_swept(tight: RunningSandbox) -> None:
    # a closed session's data is swept session_ttl + session_retention after it was created, whenever it was closed:
    # the 429's Retry-After says so (it said the closing time + the retention, a session_ttl too early, and then 1 s
    # on each retry until the sweep)
    config = tight.config
    with httpx.Client(base_url=tight.base_url, timeout=30) as client, \
            httpx.Client(base_url=tight.base_url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme = issue(admin, "acme", "acme.ehr")
        sid = client.post("/admin/sessions", json={"seed": 1}, headers=acme).json()["session_id"]
        note = client.post(f"/admin/sessions/{sid}/notes", json={"kind": "step", "data": {"p": "p" * 25_000}},
                           headers=acme)
        assert note.status_code == 201, note.text
        assert client.post(f"/admin/sessions/{sid}/close", headers=acme).status_code == 200
        refused = client.post("/admin/sessions", json={"seed": 2}, headers=acme)
        assert refused.status_code == 429 and refused.json()["bound"] == "recorded-bytes", refused.text
        swept_in = config.session_ttl + config.session_retention
        assert swept_in - 60 <= int(refused.headers["retry-after"]) <= swept_in + config.sweep_seconds + 60
        assert refused.json()["retry_after"] == int(refused.headers["retry-after"])


def test_the_production_roles_records_count_for_no_session(stores: tuple[Store, Store]) -> None:
    # the production role keeps an installation's documents under "prod:<installation id>" (an installation's unique
    # ids are its own), not only "prod": each of them made the store write a count no session has, never swept
    a, b = stores
    for scope in ("prod", "prod:ins_a1"):
        a.put_record("docs", scope, "k", {"document": "x" * 1000})
        b.put_record("docs", scope, "k", {"document": "x" * 2000})  # replaced
        assert a.recorded_bytes(scope) == 0 and b.recorded_bytes(scope) == 0
    a.put_record("docs", "ses_p1", "k", {"document": "x" * 1000})  # a session's still counts
    assert b.recorded_bytes("ses_p1") >= 1000


#: the triggers the recorded-bytes bound first came with (d4efbd0): every scope counted but "prod"
FIRST_TRIGGERS = """
DROP TRIGGER records_counted;
DROP TRIGGER records_recounted;
CREATE TRIGGER records_recorded AFTER INSERT ON records WHEN NEW.scope <> 'prod' BEGIN
    INSERT INTO recorded (scope, bytes) VALUES (NEW.scope, length(CAST(NEW.data AS BLOB)))
    ON CONFLICT (scope) DO UPDATE SET bytes = recorded.bytes + excluded.bytes;
END;
CREATE TRIGGER records_rerecorded AFTER UPDATE OF data ON records WHEN NEW.scope <> 'prod' BEGIN
    UPDATE recorded SET bytes = bytes + length(CAST(NEW.data AS BLOB)) - length(CAST(OLD.data AS BLOB))
    WHERE scope = NEW.scope;
END;
"""


def test_a_store_of_the_first_triggers_counts_no_production_record(tmp_path: Path) -> None:
    # an SQLite store whose triggers counted every scope but "prod" is given the ones that count sessions only, and
    # loses the counts they kept of production scopes
    path = tmp_path / "sandbox.sqlite3"
    Store(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(FIRST_TRIGGERS)
    first = sqlite3.connect(path)
    with contextlib.closing(first):
        first.execute("INSERT INTO records VALUES ('docs', 'prod:ins_a1', 'k', 1, ?)", ("x" * 1000,))
        first.commit()
        assert first.execute("SELECT bytes FROM recorded WHERE scope = 'prod:ins_a1'").fetchone() == (1000,)
    store = Store(path)
    try:
        assert store.recorded_bytes("prod:ins_a1") == 0
        store.put_record("docs", "prod:ins_a1", "k2", {"document": "x" * 1000})
        store.put_record("docs", "prod:ins_a1", "k", {"document": "x" * 2000})
        assert store.recorded_bytes("prod:ins_a1") == 0
        store.put_record("docs", "ses_p1", "k", {"document": "x" * 1000})
        assert store.recorded_bytes("ses_p1") >= 1000
    finally:
        store.close()


def _before_the_counts(engine: str, target: str) -> None:
    """A store at the schema step before the byte counts (no ``recorded`` table, no triggers), one session of it open
    with an exchange and a document, and a production record."""
    from sandbox.store import SCHEMA

    older = "\n".join(line for line in SCHEMA.splitlines() if "recorded" not in line)
    rows = [("INSERT INTO meta VALUES ('schema_version', '2')", ()),
            ("INSERT INTO sessions VALUES ('ses_old', 1, '{\"id\": \"ses_old\", \"state\": \"open\"}')", ()),
            ("INSERT INTO exchanges VALUES ('ses_old', 1, '{\"seq\":1,\"kind\":\"note\"}')", ()),
            ("INSERT INTO records VALUES ('docs', 'ses_old', 'k', 1, ?)", (json.dumps({"document": "x" * 1000}),)),
            ("INSERT INTO records VALUES ('docs', 'prod', 'k', 2, ?)", (json.dumps({"document": "y" * 500}),))]
    if engine == "sqlite":
        with contextlib.closing(sqlite3.connect(target)) as db, db:
            db.executescript(older)
            for sql, args in rows:
                db.execute(sql, args)
    else:
        import psycopg

        with psycopg.connect(target) as conn:
            conn.execute(older.replace(" REAL ", " DOUBLE PRECISION "))  # type: ignore[arg-type]  # our own DDL
            for sql, args in rows:
                conn.execute(sql.replace("?", "%s"), args)  # type: ignore[arg-type]  # our own statements


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_session_open_across_the_upgrade_is_counted_whole_and_never_negative(
        engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # the counts began at the upgrade: a session open across it counted none of what it had kept (its vendor's bound
    # blind to it), and on PostgreSQL a document of it replaced by a smaller one counted the difference from nothing —
    # a negative count, which then offset what the vendor's other sessions kept
    from sandbox.store import open_store

    url = request.getfixturevalue("postgresql_url") if engine == "postgresql" else None
    _before_the_counts(engine, url or str(tmp_path / "sandbox.sqlite3"))
    store = open_store(url, tmp_path / "sandbox.sqlite3")
    try:
        kept = len('{"seq":1,"kind":"note"}') + len(json.dumps({"document": "x" * 1000}))
        assert store.recorded_bytes("ses_old") == kept
        assert store.recorded_bytes("prod") == 0  # the production role's: no session's
        store.put_record("docs", "ses_old", "k", {"document": "x"})  # replaced by a smaller one
        assert store.recorded_bytes("ses_old") == kept - 999
        store.put_session({"id": "ses_old", "state": "closed"})  # finished
        store.end_session("ses_old")
        assert store.recorded_bytes("ses_old") == kept - 999
    finally:
        store.close()
    reopened = open_store(url, tmp_path / "sandbox.sqlite3")  # counted once, at the upgrade: not again
    try:
        assert reopened.recorded_bytes("ses_old") == kept - 999
    finally:
        reopened.close()
