"""A test session is served for ``session_ttl`` seconds after it was created (then 410 ``session-expired``), and what
it left in the store is swept ``session_retention`` seconds later — on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformity.signing import SigningKey
from sandbox.config import SandboxConfig
from sandbox.problems import HTTPProblem
from sandbox.server import RunningSandbox
from sandbox.store import SessionGone, Store
from sandbox.sweep import sweep_once, sweep_periodically
from sandbox.traces import build_trace
from tests.helpers import run_periodic_until


def _session(store: Store, sid: str, created: float) -> None:
    store.put_session({"id": sid, "created_ts": created, "state": "open", "faults": {}})
    store.append_exchange(sid, {"kind": "note", "note": "n", "data": {}})
    store.put_record("docs", sid, "k", {"v": 1})
    store.put_token(f"token-of-{sid}-" + "x" * 30, "access", sid, {}, ttl=600)
    store.hold(sid, "h1")
    store.admit_session('{"vendor_id": "acme"}', sid, created + 10, 100)


def _served_then_ended(sandbox_server: RunningSandbox, admin: httpx.Client, new_session: Any, mint: Any,
                       end: Callable[[Store, str], None]) -> tuple[Store, str, dict[str, str], tuple[int, int]]:
    """A new session served one request, then ended by ``end``: its store, id, bearer headers, and what it recorded
    (exchanges, bytes) at its end."""
    session = new_session()
    sid = session["session_id"]
    store: Store = sandbox_server.server.config.app.state.store
    headers = {"Authorization": f"Bearer {mint(session)}"}
    assert admin.post(f"/s/{sid}/insi/lookup", json={}, headers=headers).status_code == 422
    end(store, sid)
    return store, sid, headers, _recorded(store, sid)


def _recorded(store: Store, sid: str) -> tuple[int, int]:
    return len(store.exchanges(sid)), store.recorded_bytes(sid)


def _assert_refused_as(r: httpx.Response, code: str) -> None:
    assert r.status_code == 410, r.text
    assert r.json()["code"] == code and r.headers["content-type"] == "application/problem+json"


def test_the_sweep_deletes_what_old_sessions_left_and_nothing_else(stores: tuple[Store, Store]) -> None:
    now = time.time()
    for i in range(5):
        _session(stores[i % 2], f"ses_old{i}", now - 1000 - i)
    _session(stores[0], "ses_young", now - 10)
    stores[0].put_record("docs", "prod", "k", {"v": 2})  # the production role's: never a session's
    stores[0].put_token("harness-token-" + "y" * 30, "harness", "harness", {}, ttl=600)
    assert stores[1].sweep_sessions(now - 100, limit=2) == 2  # oldest first, a batch at a time
    assert stores[0].sweep_sessions(now - 100) == 3
    assert stores[1].sweep_sessions(now - 100) == 0
    for i in range(5):
        sid = f"ses_old{i}"
        assert stores[0].get_session(sid) is None and stores[1].exchanges(sid) == []
        assert stores[0].list_records("docs", sid) == [] and not stores[1].holding(sid)
        assert stores[0].get_token(f"token-of-{sid}-" + "x" * 30) is None
    assert stores[1].get_session("ses_young") is not None and len(stores[0].exchanges("ses_young")) == 1
    assert stores[1].list_records("docs", "ses_young") and stores[1].list_records("docs", "prod")
    assert stores[0].get_token("token-of-ses_young-" + "x" * 30) is not None
    assert stores[0].get_token("harness-token-" + "y" * 30) is not None


def test_an_expired_session_is_not_served_and_is_swept_after_its_retention(
        sandbox_server: RunningSandbox, admin: httpx.Client, new_session: Any, mint: Any) -> None:
    session = new_session()
    sid = session["session_id"]
    store: Store = sandbox_server.server.config.app.state.store
    config: SandboxConfig = sandbox_server.config
    token = mint(session)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/s/{sid}/insi/lookup"
    assert admin.post(url, json={}, headers=headers).status_code == 422  # served
    created = time.time() - config.session_ttl - 1
    store.update_session(sid, lambda s: s.update(created_ts=created))
    r = admin.post(url, json={}, headers=headers)
    assert r.status_code == 410, r.text
    assert r.json()["code"] == "session-expired"
    assert admin.get(f"/admin/sessions/{sid}/trace").status_code == 200  # still exportable until swept
    sweep_once(store, config)
    assert store.get_session(sid) is not None  # not yet: within its retention
    assert sweep_once(store, config, now=created + config.session_ttl + config.session_retention + 1) >= 1
    assert admin.get(f"/admin/sessions/{sid}/trace").status_code == 404
    assert store.exchanges(sid) == []


def test_an_expired_sessions_requests_are_refused_unread_and_unrecorded(
        sandbox_server: RunningSandbox, admin: httpx.Client, new_session: Any, mint: Any) -> None:
    # an expired session's trace stays what it was at its expiry: its software calling on (a client polling, a
    # request racing the sweep) neither grows it after the harness exported it nor, once the sweep deleted the
    # session, writes an exchange and a byte count for a session that is no more (never swept: the sweep finds
    # sessions)
    def expire(store: Store, sid: str) -> None:
        store.update_session(sid, lambda s: s.update(created_ts=time.time() - sandbox_server.config.session_ttl - 1))

    store, sid, headers, kept = _served_then_ended(sandbox_server, admin, new_session, mint, expire)
    big = b"{" + b" " * (sandbox_server.config.max_body_bytes + 10) + b"}"
    for r in (admin.post(f"/s/{sid}/insi/lookup", json={}, headers=headers),
              admin.post(f"/s/{sid}/insi/lookup", content=big, headers=headers | {"Content-Type": "application/json"}),
              admin.get(f"/s/{sid}/idp/jwks")):
        _assert_refused_as(r, "session-expired")
        assert r.json()["instance"] == r.request.url.path
    assert _recorded(store, sid) == kept


class _FailsOnce(Store):
    """A store whose first sweep fails as a database does (a PostgreSQL restart, a locked or full disk)."""

    failed = False

    def sweep_sessions(self, created_before: float, limit: int = 200) -> int:
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database is locked")
        return super().sweep_sessions(created_before, limit)


def test_a_sweep_that_fails_is_tried_again_at_the_next_period(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # the periodic task died with its first failure: that worker never swept again, and the server's shutdown,
    # awaiting the dead task, raised its error before sealing the events emitted since the last segment
    store = _FailsOnce(tmp_path / "sandbox.sqlite3")
    config = SandboxConfig(data_dir=tmp_path, admin_token="x" * 32, sweep_seconds=0.01, session_ttl=60,
                           session_retention=0)
    _session(store, "ses_old", time.time() - 3600)

    try:
        with caplog.at_level(logging.ERROR, logger="usine.sandbox.sweep"):
            assert run_periodic_until(lambda: sweep_periodically(store, config),
                                      lambda: store.get_session("ses_old") is None)
        assert store.failed and store.get_session("ses_old") is None
        assert "database is locked" in caplog.text
    finally:
        store.close()


class _SweptWhileExported(Store):
    """A store whose sweep commits between an export's read of the session and its read of the exchanges."""

    def exchanges(self, session_id: str) -> list[dict[str, Any]]:
        self.sweep_sessions(time.time() + 1)
        return super().exchanges(session_id)


def test_a_trace_swept_while_it_is_exported_is_not_signed_empty(tmp_path: Path) -> None:
    # the export read the session, the sweep deleted it with its exchanges, the export read none and signed a trace
    # of the session without any: evidence the sandbox never recorded (a vendor's bundle of it failing every check)
    store = _SweptWhileExported(tmp_path / "sandbox.sqlite3")
    try:
        _session(store, "ses_x", time.time() - 3600)
        session = store.get_session("ses_x")
        assert session is not None
        session |= {"label": "x", "seed": 1, "created": "2026-12-05T00:00:00+00:00", "base_url": "http://x",
                    "client_id": "c", "fixtures": {}}
        with pytest.raises(HTTPProblem) as gone:
            build_trace(store, session, SigningKey.from_seed(b"trace"))
        assert (gone.value.status, gone.value.code) == (404, "session-unknown")
    finally:
        store.close()


def test_a_sandbox_sweeps_as_it_starts(tmp_path: Path) -> None:
    # the periodic task slept sweep_seconds (10 minutes) before its first sweep: a sandbox restarted more often — one
    # started for each CI run of a vendor's harness on a kept --data folder — never swept anything
    store = Store(tmp_path / "sandbox.sqlite3")
    config = SandboxConfig(data_dir=tmp_path, admin_token="x" * 32, sweep_seconds=600.0, session_ttl=60,
                           session_retention=0)
    _session(store, "ses_old", time.time() - 3600)

    try:
        run_periodic_until(lambda: sweep_periodically(store, config), lambda: store.get_session("ses_old") is None,
                           polls=200)
        assert store.get_session("ses_old") is None and store.exchanges("ses_old") == []
    finally:
        store.close()


def test_a_closed_sessions_requests_are_refused_unread_and_unrecorded(
        sandbox_server: RunningSandbox, admin: httpx.Client, new_session: Any, mint: Any) -> None:
    # a closed session (its scenario ended, its run finished) answered 410 from its service but recorded the request:
    # its trace grew after the harness exported it, and a request racing the sweep left an exchange of a session the
    # sweep had deleted
    def close(store: Store, sid: str) -> None:
        assert admin.post(f"/admin/sessions/{sid}/close").status_code == 200

    store, sid, headers, kept = _served_then_ended(sandbox_server, admin, new_session, mint, close)
    for r in (admin.post(f"/s/{sid}/insi/lookup", json={}, headers=headers), admin.get(f"/s/{sid}/idp/jwks")):
        _assert_refused_as(r, "session-closed")
    assert _recorded(store, sid) == kept
    exported = admin.get(f"/admin/sessions/{sid}/trace")  # the harness exports the trace after closing it
    assert exported.status_code == 200 and exported.json()["signature"]


def test_an_append_to_a_swept_session_writes_nothing(stores: tuple[Store, Store]) -> None:
    # the middleware read the session, the sweep deleted it, the exchange was appended: an orphan row (and a byte count)
    # of a session the sweep no longer finds, kept for ever
    store, other = stores
    _session(store, "ses_gone", time.time() - 3600)
    assert other.sweep_sessions(time.time()) == 1
    with pytest.raises(SessionGone):
        store.append_exchange_text("ses_gone", '{"kind":"note"}')
    with pytest.raises(SessionGone):
        other.append_exchange("ses_gone", {"kind": "note", "data": {}})
    assert store.append_exchange_text_unless_issued("ses_gone", '{"kind":"note"}', ["0" * 64]) is None
    assert store.exchanges("ses_gone") == [] and other.recorded_bytes("ses_gone") == 0


def _orphans(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM exchanges) + (SELECT count(*) FROM recorded)").fetchone()
    assert row is not None
    return int(row[0])


def test_an_append_racing_the_sweep_on_postgresql_leaves_no_orphan(postgresql_url: str) -> None:
    import threading

    import psycopg

    from sandbox.store import PG_APPEND_EXCHANGE_UNLESS, PostgresStore

    store = PostgresStore(postgresql_url)
    try:
        # the append's transaction not yet committed as the sweep runs: the sweep waits for it, then deletes its row
        store.put_session({"id": "ses_a", "created_ts": time.time() - 3600, "state": "open"})
        swept: list[int] = []
        with psycopg.connect(postgresql_url) as appending:
            appended = appending.execute(PG_APPEND_EXCHANGE_UNLESS.replace("?", "%s"),
                                         ("ses_a", '{"kind":"note"}', "ses_a", "ses_a", [])).fetchone()
            assert appended == (1,)
            sweep = threading.Thread(target=lambda: swept.append(store.sweep_sessions(time.time())))
            sweep.start()
            sweep.join(0.5)
            assert sweep.is_alive()  # waiting for the append
        sweep.join(10)
        assert swept == [1] and _orphans(postgresql_url) == 0
        # the sweep's transaction not yet committed as the append runs: the append waits for it, then writes nothing
        store.put_session({"id": "ses_b", "created_ts": time.time() - 3600, "state": "open"})
        failed: list[BaseException] = []

        def append() -> None:
            try:
                store.append_exchange_text("ses_b", '{"kind":"note"}')
            except BaseException as exc:  # said by the assertion below
                failed.append(exc)

        with psycopg.connect(postgresql_url) as sweeping:
            sweeping.execute("SELECT id FROM sessions WHERE id = 'ses_b' FOR UPDATE")
            sweeping.execute("DELETE FROM exchanges WHERE session_id = 'ses_b'")
            sweeping.execute("DELETE FROM sessions WHERE id = 'ses_b'")
            late = threading.Thread(target=append)
            late.start()
            late.join(0.5)
            assert late.is_alive()  # waiting for the sweep
        late.join(10)
        assert [type(e) for e in failed] == [SessionGone] and _orphans(postgresql_url) == 0
    finally:
        store.close()
