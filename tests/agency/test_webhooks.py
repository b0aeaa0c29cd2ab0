"""Webhooks: label events POSTed to a real HTTP receiver, signed (Standard Webhooks), retried with backoff."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from conformity.agency.feed import append_event
from conformity.agency.registry import Registry
from conformity.agency.service import webhooks
from conformity.agency.service.webhooks import MAX_ATTEMPTS, add_webhook, deliver_due, signature
from conformity.errors import InputError


class Receiver:
    """A loopback HTTP receiver that answers the statuses it is told, in order, and keeps what it got."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.got = statuses, []  # type: ignore[var-annotated]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.got.append((dict(self.headers), body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def _event(n: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"evt_{n:024d}", "source": "urn:usine:agency", "type": "org.usine.label.revoked",
            "subject": f"lbl_{n:08d}", "time": "2026-06-01T00:00:00Z", "data": {"label_id": f"lbl_{n:08d}"}}


def test_deliveries_are_signed_retried_then_delivered_or_failed(database_target: Path | str) -> None:
    ok, flaky = Receiver([]), Receiver([503, 500])
    with Registry(database_target) as reg:
        with pytest.raises(InputError, match="https"):
            add_webhook(reg.db, "http://example.org/hook")
        _, secret = add_webhook(reg.db, ok.url)
        add_webhook(reg.db, flaky.url)
        with reg.write() as db:
            append_event(db, _event(1))
        database = reg.database
        now = dt.datetime.now(dt.UTC)
        first = deliver_due(database, now=now)
        assert sorted(a.ok for a in first) == [False, True]
        headers, body = ok.got[0]
        assert json.loads(body)["id"] == "evt_" + "1".zfill(24)
        assert headers["webhook-signature"] == signature(secret, headers["webhook-id"], int(headers["webhook-timestamp"]),
                                                         body)
        assert deliver_due(database, now=now + dt.timedelta(seconds=10)) == []  # not due yet: backoff
        assert [a.ok for a in deliver_due(database, now=now + dt.timedelta(seconds=31))] == [False]
        assert [a.ok for a in deliver_due(database, now=now + dt.timedelta(minutes=2))] == [True]
        assert len(flaky.got) == 3 and len(ok.got) == 1  # delivered once each, never again
        rows = reg.db.execute("SELECT attempts, delivered IS NOT NULL FROM deliveries ORDER BY webhook").fetchall()
        assert [tuple(r) for r in rows] == [(1, True), (3, True)]

        dead = Receiver([500] * MAX_ATTEMPTS)
        add_webhook(reg.db, dead.url)
        with reg.write() as db:
            append_event(db, _event(2))
        later = now + dt.timedelta(minutes=5)
        for _ in range(MAX_ATTEMPTS):
            deliver_due(database, now=later)
            later += dt.timedelta(days=1)
        row = reg.db.execute("SELECT attempts, failed IS NOT NULL, last_error FROM deliveries d JOIN webhooks w "
                             "ON w.id = d.webhook WHERE w.url = ?", (dead.url,)).fetchone()
        assert tuple(row) == (MAX_ATTEMPTS, True, "HTTP 500")


class Trickler:
    """A receiver that answers 200, then sends its body one byte every second, for ever (or sends no answer)."""

    def __init__(self, answer: bool = True):
        outer = self
        self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                if answer:
                    self.send_response(200)
                    self.send_header("content-length", "1000000")
                    self.end_headers()
                while not outer.stop.wait(1.0):
                    try:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    except OSError:
                        return

            def log_message(self, *args: Any) -> None:
                pass

        from socketserver import ThreadingMixIn

        class Server(ThreadingMixIn, HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.mark.parametrize("answer", [True, False], ids=["trickling-body", "no-answer"])
def test_a_slow_receiver_delays_no_other_and_fails_within_the_deadline(database_target: Path | str,
                                                                       answer: bool) -> None:
    """One delivery thread read a receiver's whole body (a 10 s timeout per read, not in all): a receiver sending a
    byte every few seconds held every other webhook's deliveries, revocations included, for ever."""
    import time

    slow, ok = Trickler(answer), Receiver([])
    try:
        with Registry(database_target) as reg:
            add_webhook(reg.db, slow.url)
            add_webhook(reg.db, ok.url)
            with reg.write() as db:
                append_event(db, _event(1))
            started = time.monotonic()
            attempts = deliver_due(reg.database, timeout=2.0)
            assert time.monotonic() - started < 10
            assert len(ok.got) == 1
            by_url = {url: a for a, (url,) in zip(sorted(attempts, key=lambda a: a.webhook), reg.db.execute(
                "SELECT url FROM webhooks ORDER BY id").fetchall(), strict=True)}
            assert by_url[ok.url].ok and (by_url[slow.url].ok if answer else not by_url[slow.url].ok)
    finally:
        slow.stop.set()
        slow.server.shutdown()


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data/", "http://169.254.169.254/hook",
                                 "https://[fd00:ec2::254]/hook", "https://[fe80::1]/hook", "https://0.0.0.0/hook",
                                 "https://[::ffff:169.254.169.254]/hook", "https://224.0.0.1/hook"])
def test_a_webhook_to_a_cloud_metadata_link_local_or_unspecified_address_is_refused(url: str, tmp_path: Path) -> None:
    """The agency POSTs every label event, from inside its network, to each webhook: a URL on the cloud's metadata
    service (169.254.169.254, fd00:ec2::254), any link-local, unspecified or multicast address was registered (and
    called). It is refused when registered, with why; one already registered (or a name that resolves there later)
    is not called: its delivery fails with why."""
    registry = tmp_path / "registry.sqlite3"
    with Registry(registry) as reg:
        with pytest.raises(InputError, match="address") as info:
            add_webhook(reg.db, url)
        assert "not a receiver the agency calls" in info.value.render(), info.value.render()
        assert reg.db.execute("SELECT count(*) FROM webhooks").fetchone()[0] == 0
        with reg.write() as db:  # registered before this rule, or by hand
            db.execute("INSERT INTO webhooks (url, secret, created) VALUES (?, ?, ?)",
                       (url, "whsec_" + "A" * 43 + "=", "2026-01-01T00:00:00Z"))
            append_event(db, _event(1))
        attempts = deliver_due(reg.database)
    assert [a.ok for a in attempts] == [False] and "not a receiver the agency calls" in attempts[0].detail, attempts


@pytest.mark.parametrize(("late", "current"), [(False, True), (True, False)],
                         ids=["late-failure-after-delivered", "late-success-after-retry"])
def test_a_settle_whose_lease_passed_changes_nothing(database_target: Path | str, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture, late: bool,
                                                     current: bool) -> None:
    """A worker that paused past its lease (claimed, then sent for longer than ``LEASE``) settled its delivery with
    ``WHERE webhook = ? AND event = ?`` over what the worker that claimed it again since had recorded: a delivered
    row given a retry's error and next attempt, or a retry marked delivered. Now a settle holds only while the lease
    it claimed is still the row's: the late one is logged and changes nothing."""
    with Registry(database_target) as reg:
        add_webhook(reg.db, "http://127.0.0.1:9/hook")
        with reg.write() as db:
            append_event(db, _event(1))
        now = dt.datetime.now(dt.UTC)
        settled: list[tuple[Any, ...]] = []

        async def paused(sends: list[Any], timeout: float) -> list[tuple[bool, str]]:
            """The first worker's sends: while it waits, its lease passes and a second worker claims and settles."""
            monkeypatch.setattr(webhooks, "_post_all", answered(current))
            second = await asyncio.to_thread(deliver_due, reg.database,  # another worker
                                             now=now + webhooks.LEASE + dt.timedelta(seconds=1))
            assert [a.ok for a in second] == [current]
            settled.append(tuple(reg.db.execute("SELECT * FROM deliveries").fetchone()))
            return [(late, "HTTP 204" if late else "HTTP 500")]

        def answered(ok: bool) -> Any:
            async def post_all(sends: list[Any], timeout: float) -> list[tuple[bool, str]]:
                return [(ok, "HTTP 204" if ok else "HTTP 503")]
            return post_all

        monkeypatch.setattr(webhooks, "_post_all", paused)
        with caplog.at_level("WARNING", logger="usine.agency.webhooks"):
            first = deliver_due(reg.database, now=now)
        assert [tuple(r) for r in reg.db.execute("SELECT * FROM deliveries").fetchall()] == settled
        assert [(a.ok, a.recorded) for a in first] == [(late, False)]
        assert any("lease" in r.getMessage() for r in caplog.records), caplog.records
