"""Several worker processes over a shared PostgreSQL store: ``usine sandbox serve --workers N --database URL``.

The store's read-modify-writes hold under concurrency (tested from threads on PostgreSQL), a 2-worker sandbox
really spreads requests over two processes, and the reference vendor's run against it gives the verdicts of the
same run against the embedded one-process sandbox. SQLite refuses more than one worker, with the reason.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conformity.cli import cli
from sandbox.credentials import secret_hash
from sandbox.server import child_server
from sandbox.store import PostgresStore

ADMIN = "workers-test-admin-token-0123456789"
VENDORS = Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health"


def test_sqlite_refuses_more_than_one_worker_saying_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--workers", "2", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "--workers 2 needs a store the worker processes share: --database postgresql://" in result.output
    assert "SQLite, the default, serves one process" in result.output
    assert not (tmp_path / "sandbox.sqlite3").exists()  # refused before anything was created


def test_a_database_that_is_not_a_postgresql_url_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--database", str(tmp_path / "x.sqlite3"),
                                      "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "--database takes a postgresql:// URL" in result.output


# ---------------------------------------------------------------------------------------------- the shared store
def at_once(n: int, work: Any) -> list[Any]:
    """``work(i)`` in n threads started together; their results."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_postgresql_store_read_modify_writes_hold_under_concurrency(postgresql_url: str) -> None:
    first, second = PostgresStore(postgresql_url), PostgresStore(postgresql_url)  # two workers' pools
    stores = (first, second)
    try:
        first.put_session({"id": "ses_a", "state": "open", "faults": {"dmp": {"unavailable": 5}}})

        # a trace's sequence numbers: every append gets its own, none lost, none twice
        seqs = at_once(24, lambda i: stores[i % 2].append_exchange("ses_a", {"kind": "note", "n": i}))
        assert sorted(seqs) == list(range(1, 25))
        assert [e["seq"] for e in second.exchanges("ses_a")] == list(range(1, 25))

        # a counted fault: five 503s, however many requests race for them
        from sandbox.deps import take_fault

        session = first.get_session("ses_a")
        assert session is not None
        taken = at_once(20, lambda i: take_fault(stores[i % 2], session, "dmp", "unavailable"))
        assert taken.count(True) == 5
        assert second.get_session("ses_a")["faults"]["dmp"]["unavailable"] == 0  # type: ignore[index]

        # a one-time authorization code: one taker gets it
        first.put_token("c" * 43, "code", "ses_a", {"client_id": "cli"}, ttl=60)
        got = at_once(12, lambda i: stores[i % 2].take_token("c" * 43))
        assert sum(g is not None for g in got) == 1
        # a used code's list of the tokens it gave, extended by a refresh: data replaced, kind and expiry kept
        first.put_token("u" * 43, "code-used", "ses_a", {"issued_sha256": ["a"]}, ttl=60)
        second.update_token_data(secret_hash("u" * 43), {"issued_sha256": ["a", "b"]})
        used = first.get_token("u" * 43)
        assert used is not None and used["kind"] == "code-used" and not used["expired"]
        assert used["issued_sha256"] == ["a", "b"]

        # a collection's order: distinct, gapless positions
        at_once(16, lambda i: stores[i % 2].put_record("documents", "ses_a", f"doc{i}", {"i": i}))
        assert sorted(r["i"] for r in first.list_records("documents", "ses_a")) == list(range(16))

        # a service's check-then-write under the store's lock: one writer at a time across processes
        inside, overlap = [0], [False]

        def guarded(i: int) -> None:
            with stores[i % 2].lock("dmp"):
                inside[0] += 1
                overlap[0] |= inside[0] > 1
                time.sleep(0.01)
                inside[0] -= 1

        at_once(8, guarded)
        assert not overlap[0]
    finally:
        first.close()
        second.close()


def test_postgresql_locked_batches_commit_before_the_next_writer_on_the_name_reads(postgresql_url: str) -> None:
    """``locked_batch`` (a submission's check-then-write: the lock with the first read, the writes with the commit)
    excludes every other writer on the name — ``lock``'s and its own, from either worker — until its writes are
    committed, and an error inside never leaves the lock held."""
    import psycopg

    from conformity.db.connection import Database

    first, second = PostgresStore(postgresql_url), PostgresStore(postgresql_url)
    stores = (first, second)
    name = "dmp\nses_b"
    probe = Database(postgresql_url)

    def lock_is_free() -> bool:
        conn = probe.connect()
        try:
            if not conn.execute("SELECT pg_try_advisory_lock(4, hashtext(?))", (name,)).fetchone()[0]:
                return False
            conn.execute("SELECT pg_advisory_unlock(4, hashtext(?))", (name,))
            return True
        finally:
            conn.close()

    def bump(i: int) -> None:
        store = stores[i % 2]
        with store.locked_batch(name) if i % 3 else store.lock(name):  # one in three: the session lock
            seen = store.get_record("counters", "ses_b", "n")
            assert seen is not None
            time.sleep(0.002)
            store.put_record("counters", "ses_b", "n", {"n": seen["n"] + 1})
            store.put_record("counters", "ses_b", f"by{i}", {"saw": seen["n"]})

    try:
        first.put_record("counters", "ses_b", "n", {"n": 0})
        at_once(18, bump)
        assert first.get_record("counters", "ses_b", "n") == {"n": 18}  # no write lost: each read the last committed
        assert sorted(r["saw"] for r in second.list_records("counters", "ses_b") if "saw" in r) == list(range(18))
        assert lock_is_free()

        with pytest.raises(RuntimeError), first.locked_batch(name):  # refused by the service: what it wrote stays
            first.put_record("counters", "ses_b", "n", {"n": 50})
            raise RuntimeError("409")
        assert lock_is_free() and second.get_record("counters", "ses_b", "n") == {"n": 50}

        with pytest.raises(psycopg.errors.DivisionByZero), first.locked_batch(name):  # refused by PostgreSQL
            first.put_record("counters", "ses_b", "n", {"n": 99})
            first._run("SELECT 1 / 0", ())
        assert lock_is_free() and second.get_record("counters", "ses_b", "n") == {"n": 50}  # undone, lock let go
        with first.locked_batch(name):  # its connection went back to the pool usable
            assert first.get_record("counters", "ses_b", "n") == {"n": 50}
    finally:
        first.close()
        second.close()
        probe.dispose()


def test_postgresql_calls_under_a_lock_run_on_the_locks_connection(postgresql_url: str) -> None:
    """A thread holds one connection at a time: the calls it makes under ``lock`` run on the connection holding the
    advisory lock (on other connections, 250 sessions' submissions on two workers opened more than PostgreSQL's 100
    connections)."""
    from conformity.db.connection import Database

    threads = 24
    first, second = PostgresStore(postgresql_url), PostgresStore(postgresql_url)
    stores = (first, second)
    counter = Database(postgresql_url)
    inside, done = threading.Barrier(threads), threading.Barrier(threads + 1)
    counted: list[int] = []

    def work(i: int) -> None:
        store = stores[i % 2]
        with store.lock(f"scope-{i}"):
            inside.wait()  # every thread holds its lock, then each makes its calls at once
            store.put_record("docs", f"ses_{i}", "a", {"i": i})
            assert store.get_record("docs", f"ses_{i}", "a") == {"i": i}
            done.wait()  # counted here, every lock still held
            done.wait()

    def count() -> None:
        done.wait()
        conn = counter.connect()
        try:
            counted.append(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND pid <> pg_backend_pid()").fetchone()[0])
        finally:
            conn.close()
        done.wait()

    try:
        waiter = threading.Thread(target=count)
        waiter.start()
        at_once(threads, work)
        waiter.join()
        assert counted and counted[0] <= threads + 2, counted  # + the two stores' schema connections, idle
    finally:
        first.close()
        second.close()
        counter.dispose()


# ---------------------------------------------------------------------------------------------- two workers
def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.fixture
def two_workers(postgresql_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``usine sandbox serve --workers 2 --database URL --test-pki DIR``: its URL and CA certificate."""
    pki = tmp_path / "pki"

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "conformity", "sandbox", "serve", "--workers", "2", "--database", postgresql_url,
                "--port", str(port), "--data", str(tmp_path / "data"), "--test-pki", str(pki)]

    def up(port: int) -> bool:
        return (pki / "ca.pem").exists() and httpx.get(f"https://127.0.0.1:{port}/health",
                                                       verify=trusting(pki / "ca.pem"), timeout=5).status_code == 200

    started = False
    with (tmp_path / "serve.log").open("wb") as log:
        try:
            with child_server(command, up, timeout=90, env={**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": ADMIN}, log=log,
                              interval=0.2) as (_, port):
                started = True
                yield f"https://127.0.0.1:{port}", pki / "ca.pem"
        except RuntimeError as exc:
            if started:
                raise
            pytest.fail(f"the 2-worker sandbox: {exc}\n{(tmp_path / 'serve.log').read_text()}")


@pytest.mark.slow
def test_two_workers_serve_one_sandbox_and_the_reference_run_gets_the_same_verdicts(
        two_workers: tuple[str, Path]) -> None:
    from conformity import plugins
    from conformity.catalog import load_catalog
    from conformity.harness.outputs import run_to_end
    from conformity.harness.plan import make_plan
    from conformity.harness.runner import Runner
    from conformity.harness.sandbox_access import connect, start_local
    from conformity.harness.vendor import load_vendor

    url, ca = two_workers
    workers = set()
    # a new connection each time: the kernel hands them to either worker. The fixture's readiness is the first worker
    # answering; on a loaded machine the second may still be importing, so ask until both answered or a minute passed.
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        with httpx.Client(verify=trusting(ca), timeout=10) as c:
            workers.add(c.get(url + "/health").json()["worker"])
        time.sleep(0.05)
    assert len(workers) == 2, "every request reached the same worker process"

    with httpx.Client(base_url=url, verify=trusting(ca), headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
        refused = admin.get("/admin/events")
        assert refused.status_code == 503 and refused.json()["code"] == "production-role-single-worker"
        assert admin.get("/admin/listeners").json()["listeners"]["trusted"] == url

    plugins.register_all()  # every installed pack's checks and scenarios
    vendor = load_vendor(VENDORS / "reference" / "vendor.toml")
    only = ("DOCSHARE-021", "DOCSHARE-022", "PATIENTID-011", "PRACAUTH-001", "PRACAUTH-005", "MESSAGING-001")
    plan = make_plan(load_catalog(), "2027-W2", "HOSPITAL", only)
    with connect(url, ADMIN, ca) as access:
        shared = run_to_end(Runner(plan, vendor, 7, access)).report
    with start_local() as access:
        embedded = run_to_end(Runner(plan, vendor, 7, access)).report
    assert {r["id"]: r["verdict"] for r in shared["requirements"]} == \
           {r["id"]: r["verdict"] for r in embedded["requirements"]}
    assert [(c["id"], c["status"]) for c in shared["checks"]] == [(c["id"], c["status"]) for c in embedded["checks"]]
    assert shared["summary"]["passed"], shared["problems"]
