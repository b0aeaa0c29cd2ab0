"""Rules that read then write, raced: requests sent at once, or one paused inside the registry's write lock."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conformity.agency.registry import Registry, iso
from conformity.agency.service import accounts
from conformity.agency.submit import decide_bundle, decide_submission
from conformity.catalog import Catalog
from conformity.db.connection import WRITE_LOCK, Connection, Database
from conformity.errors import InputError
from conformity.signing import KeyRing, unverified_payload
from tests.agency.helpers import AGENCY, DECIDED, Runs, accept_all
from tests.agency.service_client import Service, upload

BOUND = 60.0  # no step of these tests waits longer (a hang fails, it does not block CI)


def _as(s: Service, login: str) -> TestClient:
    with Registry(s.config.database) as reg:
        acct = accounts.account(reg.db, login)
        assert acct is not None
        token = accounts.create_token(reg.db, acct, "api")
    c = s.client()
    c.headers["Authorization"] = f"Bearer {token}"
    return c


def _uploaded(s: Service, runs: Runs) -> tuple[str, dict[str, Any], TestClient, TestClient, TestClient]:
    """The reference run uploaded and accepted by alice: its submission, the review body for what awaits a review,
    and the staff's clients (alice, bob, dora)."""
    sub = upload(s.vendor(), runs.reference)["submission"]["id"]  # type: ignore[index]
    alice, bob, dora = _as(s, "alice"), _as(s, "bob"), _as(s, "dora")
    queue = alice.get("/api/v1/staff/queue").json()["queue"]
    awaiting = [a["id"] for a in next(q for q in queue if q["submission"] == sub)["awaiting"]]
    body = {"requirements": awaiting, "verdict": "accepted", "reason": "read: it shows what is asked"}
    assert alice.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 201
    return sub, body, alice, bob, dora


def _labelled(s: Service, runs: Runs) -> str:
    """The reference run uploaded, reviewed by two reviewers and decided: its label id."""
    sub, body, _, bob, dora = _uploaded(s, runs)
    assert bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 201
    decided = dora.post(f"/api/v1/staff/submissions/{sub}/decision", json={})
    assert decided.json()["decision"]["outcome"] == "labelled", decided.json()
    return str(decided.json()["decision"]["label_id"])


@contextmanager
def write_lock_held(database: Database) -> Iterator[Callable[[], None]]:
    """The registry's write lock, held by another connection (as a long decision holds it) until released."""
    if database.dialect == "sqlite":
        assert database.path is not None
        raw = sqlite3.connect(database.path, isolation_level=None, check_same_thread=False)
        raw.execute("BEGIN IMMEDIATE")
        done = threading.Event()

        def release() -> None:
            if not done.is_set():
                done.set()
                raw.execute("ROLLBACK")
        try:
            yield release
        finally:
            release()
            raw.close()
    else:
        import psycopg

        pg = psycopg.connect(str(database.target), autocommit=True)
        pg.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
        released = threading.Event()

        def release_pg() -> None:
            if not released.is_set():
                released.set()
                pg.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))
        try:
            yield release_pg
        finally:
            release_pg()
            pg.close()


class Writers:
    """Counts the write transactions asked for (``Connection.begin`` called: waiting for the lock, or taking it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.asked = 0
        self.changed = threading.Condition()
        begin = Connection.begin

        def counted(conn: Connection) -> None:
            with self.changed:
                self.asked += 1
                self.changed.notify_all()
            begin(conn)
        monkeypatch.setattr(Connection, "begin", counted)

    def wait_for(self, n: int, or_: Callable[[], bool] = lambda: False) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.asked >= n or or_(), timeout=BOUND), "never asked for the lock"


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # reported by the test that joins
            out["error"] = exc
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, out


def _next_second(after: dt.datetime) -> None:
    """Return once the clock reads a later whole second than ``after`` (what ``issued`` and ``revoked`` record)."""
    done = threading.Event()
    while dt.datetime.now(dt.UTC).replace(microsecond=0) <= after.replace(microsecond=0):
        done.wait(0.02)


def test_a_revocation_list_never_misses_a_revocation_dated_before_it_was_issued(
        service: Service, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revocation was dated when the decider asked, then waited for the write lock (held by a long decision): a
    revocation list read meanwhile, a second later, did not carry it — and the list carrying it later said it was
    revoked before the first list was issued. A payment run relying on the first list paid installations of a label
    that the agency's own lists say was revoked then. Now the revocation is dated holding the lock, and a list is
    issued at a time taken holding it: every revocation dated before a list's ``issued`` is in it."""
    s = service
    label_id = _labelled(s, runs)
    dora, public = _as(s, "dora"), s.client()
    writers = Writers(monkeypatch)
    with write_lock_held(s.config.database) as release:
        asked = dt.datetime.now(dt.UTC)
        revoker, revoked = _in_thread(lambda: dora.post(f"/api/v1/staff/labels/{label_id}/revocation",
                                                        json={"reason": "field report: TLS off"}))
        writers.wait_for(1, lambda: not revoker.is_alive())  # the revocation waits for the lock now
        _next_second(asked)
        reader, listed = _in_thread(lambda: public.get("/api/v1/revocations"))
        writers.wait_for(2, lambda: not reader.is_alive())  # the list is read, or waits for the lock
        release()
        revoker.join(BOUND)
        reader.join(BOUND)
    assert "error" not in revoked and "error" not in listed, (revoked, listed)
    assert revoked["value"].status_code == 200, revoked["value"].text
    doc = unverified_payload(listed["value"].json())
    stamp = s.table(f"SELECT revoked FROM labels WHERE label_id = '{label_id}'")[0][0]
    carried = {r["label_id"] for r in doc["revocations"]}
    assert label_id in carried or str(stamp) >= doc["issued"], (stamp, doc["issued"], carried)


class OnNextWrite:
    """Run ``then`` once, in the thread that asks for the next write transaction, before it takes the lock: what
    another writer that got the lock first committed (an admin's disable landing while a request is under way)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, then: Callable[[], None]):
        self.armed, self.ran = False, False
        begin = Connection.begin

        def hooked(conn: Connection) -> None:
            if self.armed:
                self.armed = False
                then()
                self.ran = True
            begin(conn)
        monkeypatch.setattr(Connection, "begin", hooked)


def _disable(s: Service, login: str, how: str = "disable") -> Callable[[], None]:
    """An admin's change that ends what a person signed in with: the account disabled, or its password reset."""
    def run() -> None:
        admin = accounts.Actor("root", "admin", "test")
        with Registry(s.config.database) as reg:
            if how == "disable":
                accounts.set_disabled(reg.db, login, True, admin)
            else:
                accounts.set_temporary_password(reg.db, login, "a temporary password 42", admin)
    return run


@pytest.mark.parametrize("how", ["disable", "reset"])
@pytest.mark.parametrize("action", ["review", "decide", "revoke"])
def test_an_action_under_way_when_its_account_is_disabled_changes_nothing(
        sqlite_service: Service, runs: Runs, monkeypatch: pytest.MonkeyPatch, action: str, how: str) -> None:
    """Who acts was checked when the request came in: a reviewer (decider) disabled — or whose password an admin
    reset, ending their sessions and tokens — while their request waited for the write lock still had their
    acceptance count as the second four-eyes review (their decision issue a label, their revocation revoke),
    recorded after the change had committed. Now the account and the token it acts with are checked again inside
    the action's own transaction: 403, nothing recorded."""
    s = sqlite_service
    sub, body, _, bob, dora = _uploaded(s, runs)
    if action != "review":
        assert bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 201
    label_id = None
    if action == "revoke":
        label_id = dora.post(f"/api/v1/staff/submissions/{sub}/decision", json={}).json()["decision"]["label_id"]
    acting = {"review": "bob", "decide": "dora", "revoke": "dora"}[action]
    before = s.table("SELECT count(*) FROM reviews"), s.table("SELECT label_id, revoked FROM labels"), \
        s.table("SELECT count(*) FROM events")
    hook = OnNextWrite(monkeypatch, _disable(s, acting, how))
    hook.armed = True
    if action == "review":
        r = bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body)
    elif action == "decide":
        r = dora.post(f"/api/v1/staff/submissions/{sub}/decision", json={})
    else:
        r = dora.post(f"/api/v1/staff/labels/{label_id}/revocation", json={"reason": "field report"})
    assert hook.ran
    assert s.table(f"SELECT disabled IS NOT NULL OR password_change_due IS NOT NULL FROM accounts "
                   f"WHERE login = '{acting}'") == [(1,)]
    assert r.status_code == 403, r.text
    assert (s.table("SELECT count(*) FROM reviews"), s.table("SELECT label_id, revoked FROM labels"),
            s.table("SELECT count(*) FROM events")) == before


def test_a_decision_waiting_for_the_lock_reads_what_committed_meanwhile_on_a_repeatable_read_server(
        postgresql_url: str, runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> None:
    """On a PostgreSQL server whose default isolation is REPEATABLE READ (or SERIALIZABLE: an operator's choice), a
    writer's snapshot was taken by the very statement that waited for the write lock: a decision that waited read
    the registry as it was before the writer it waited for. A MUST requirement rejected meanwhile (a third
    reviewer) was not seen, and the run was labelled. Now a write transaction is READ COMMITTED whatever the server's
    default: each statement after the lock reads what committed before it."""
    import psycopg

    name = postgresql_url.rsplit("/", 1)[1]
    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation TO 'repeatable read'")
    key = tmp_path / "agency.pem"
    AGENCY.save(key)
    first = decide_bundle(runs.reference, catalog, trust, postgresql_url, key, tmp_path / "out", now=DECIDED)
    sub = first.doc["submission"]
    accept_all(postgresql_url, sub)  # two reviewers: the run would be labelled
    with Registry(postgresql_url) as held, held.write() as db, psycopg.connect(postgresql_url, autocommit=True) as spy:
        decider, decided = _in_thread(lambda: decide_submission(sub, catalog, postgresql_url, key, tmp_path / "out",
                                                                now=DECIDED))
        deadline = time.monotonic() + BOUND
        while not spy.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                              ).fetchone()[0]:  # type: ignore[index]
            assert decider.is_alive() and time.monotonic() < deadline, decided
            time.sleep(0.01)
        db.execute("INSERT INTO reviews (submission, requirement, level, method, verdict, reason, reviewer, at, evidence) "
                   "SELECT submission, requirement, level, method, 'rejected', 'the certificate has expired', "
                   "'C. Third', at, evidence FROM reviews WHERE submission = ? AND requirement = 'SECURITY-013' "
                   "ORDER BY id DESC LIMIT 1", (sub,))
    decider.join(BOUND)
    assert "error" not in decided, decided
    assert decided["value"].doc["outcome"] == "refused", decided["value"].doc
    with Registry(postgresql_url) as reg:
        assert reg.db.execute("SELECT count(*) FROM labels").fetchone()[0] == 0


# ---------------------------------------------------------------------------------------------- raced, no hole found
def _at_once(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """``fn(0..n-1)`` in ``n`` threads released together by a barrier; their results (or exceptions), in order."""
    barrier = threading.Barrier(n, timeout=BOUND)

    def go(i: int) -> Any:
        barrier.wait()
        return fn(i)
    threads = [_in_thread(lambda i=i: go(i)) for i in range(n)]  # type: ignore[misc]
    for t, _ in threads:
        t.join(BOUND)
    return [out.get("value", out.get("error")) for _, out in threads]


def test_the_same_reviewer_accepting_from_two_sessions_at_once_counts_once(service: Service, runs: Runs) -> None:
    """Two acceptances of the same MUST requirements by one reviewer, sent at once: one is the first review, the other
    is refused by the four-eyes rule (the registry's write lock serialises them): never two reviewers."""
    s = service
    sub = upload(s.vendor(), runs.reference)["submission"]["id"]  # type: ignore[index]
    sessions = [_as(s, "alice"), _as(s, "alice")]
    awaiting = [a["id"] for a in next(q for q in sessions[0].get("/api/v1/staff/queue").json()["queue"]
                                      if q["submission"] == sub)["awaiting"]]
    body = {"requirements": awaiting, "verdict": "accepted", "reason": "read: it shows what is asked"}
    answers = _at_once(2, lambda i: sessions[i].post(f"/api/v1/staff/submissions/{sub}/reviews", json=body))
    assert sorted(r.status_code for r in answers) == [201, 422], answers
    assert s.table("SELECT count(DISTINCT reviewer) FROM reviews") == [(1,)]
    decided = _as(s, "dora").post(f"/api/v1/staff/submissions/{sub}/decision", json={}).json()["decision"]
    assert decided["outcome"] == "pending" and s.table("SELECT count(*) FROM labels") == [(0,)]


def test_two_decisions_of_one_submission_at_once_issue_one_label(service: Service, runs: Runs) -> None:
    """Two deciders deciding the same reviewed submission at once: one label, one event; the other is told nothing new
    was recorded."""
    s = service
    sub, body, _, bob, _ = _uploaded(s, runs)
    assert bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 201
    deciders = [_as(s, "dora"), _as(s, "dora")]
    answers = _at_once(2, lambda i: deciders[i].post(f"/api/v1/staff/submissions/{sub}/decision", json={}))
    assert [r.status_code for r in answers] == [200, 200], answers
    assert sorted(r.json()["created"] for r in answers) == [False, True]
    assert len({r.json()["decision"]["label_id"] for r in answers}) == 1
    assert s.table("SELECT count(*) FROM labels") == [(1,)]
    assert s.table("SELECT count(*) FROM events WHERE type = 'org.usine.label.issued'") == [(1,)]


def test_wrong_passwords_sent_at_once_get_no_more_guesses_than_the_bound(database_target: Path | str) -> None:
    """Twelve wrong passwords for one login sent at once, the bound three: each attempt is counted before its password
    is checked (accounts.attempt), so at most three passwords are checked, whatever the interleaving."""
    database = Database(database_target)
    try:
        with Registry(database) as reg:
            accounts.create_account(reg.db, "alice", "Alice", "reviewer", password="correct horse battery staple")
        window = dt.timedelta(minutes=15)

        def guess(i: int) -> bool:
            with Registry(database) as reg:
                pending, wait = accounts.attempt(reg.db, "alice", f"203.0.113.{i}", window, 3, 100)
                if wait is not None:
                    return False
                assert accounts.check_password(reg.db, "alice", f"wrong guess {i}", f"203.0.113.{i}", pending) is None
                return True
        checked = _at_once(12, guess)
        assert all(isinstance(c, bool) for c in checked), checked
        assert 1 <= sum(checked) <= 3, checked
    finally:
        database.dispose()


@pytest.mark.parametrize("how", ["disable", "reset"])
def test_an_upload_recorded_after_its_account_was_disabled_is_refused(
        sqlite_service: Service, runs: Runs, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The vendor's token was checked again once the body was in, then the upload waited for the write lock to be
    recorded: a disable (or password reset, revoking the token) committing meanwhile still let it in, verified and
    decided. Now the token is checked inside the recording transaction: refused, nothing kept."""
    s = sqlite_service
    hook = OnNextWrite(monkeypatch, _disable(s, "ref", how))
    hook.armed = True
    r = s.vendor().post("/api/v1/submissions", params={"name": "bundle.zip"}, content=runs.reference.read_bytes(),
                        headers={"Content-Type": "application/zip"})
    assert hook.ran
    assert r.status_code == 403, r.text
    assert s.table("SELECT id FROM uploads") == [] and s.table("SELECT id FROM submissions") == []
    assert not [p for p in s.config.uploads.glob("*") if p.is_file()]  # nor its file kept


def _sent_while_the_lock_is_held(s: Service, monkeypatch: pytest.MonkeyPatch,
                                 send: Callable[[], Any]) -> tuple[Any, dt.datetime]:
    """``send`` (a staff request that writes) made while another connection holds the write lock, the lock released
    once the request waits for it and the clock reads a later whole second: its answer, and when the lock was
    released (what the request should be dated at the earliest)."""
    writers = Writers(monkeypatch)
    with write_lock_held(s.config.database) as release:
        asked = dt.datetime.now(dt.UTC)
        sender, sent = _in_thread(send)
        writers.wait_for(1, lambda: not sender.is_alive())  # the request waits for the lock
        _next_second(asked)
        released = dt.datetime.now(dt.UTC)
        release()
        sender.join(BOUND)
    assert "error" not in sent and "value" in sent, sent
    return sent["value"], released


def test_a_label_issued_after_waiting_for_the_lock_is_dated_when_it_was_issued(
        service: Service, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision was dated when the decider asked, then waited for the write lock: its label said it was issued
    before whatever committed meanwhile — a reinstatement that allowed it, say: the label then covered a time when its
    version was blocked, and a payment run paid installations of that time. Now a decision the caller does not date
    is dated holding the lock, as revocations are."""
    s = service
    sub, body, _, bob, dora = _uploaded(s, runs)
    assert bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 201
    decided, released = _sent_while_the_lock_is_held(
        s, monkeypatch, lambda: dora.post(f"/api/v1/staff/submissions/{sub}/decision", json={}))
    assert decided.status_code == 200, decided.text
    doc = decided.json()
    assert doc["decision"]["outcome"] == "labelled"
    issued = s.table("SELECT issued FROM labels")[0][0]
    assert str(issued) >= iso(released) and doc["decision"]["decided"] >= iso(released), (issued, released)


def _disable_in(database: Database, login: str, admin: accounts.Actor) -> None:
    with Registry(database) as reg:
        accounts.set_disabled(reg.db, login, True, admin)


def _fresh_accounts(tmp_path: Path) -> Database:
    database = Database(tmp_path / "registry.sqlite3")
    with Registry(database) as reg:
        accounts.create_account(reg.db, "ref", "Reference vendor", "vendor", vendor_id="usine-reference")
        accounts.create_account(reg.db, "root", "Root", "admin", password="correct horse battery staple")
    return database


@pytest.mark.parametrize("issue", ["rotate", "create"])
def test_a_token_issued_while_its_account_is_disabled_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, issue: str) -> None:
    """An admin read the account (active), then issued it a token: a disable committing in between left a live
    token on a disabled account, which enabling it again brought back — "enabling brings none back" broken. Now a
    token is issued only to an account still active inside the issuing transaction."""
    database = _fresh_accounts(tmp_path)
    admin = accounts.Actor("root", "admin", "test")
    with Registry(database) as reg:
        acct = accounts.account(reg.db, "ref")
        assert acct is not None
        hook = OnNextWrite(monkeypatch, lambda: _disable_in(database, "ref", admin))
        hook.armed = True
        with pytest.raises(InputError, match="disabled"):
            if issue == "rotate":
                accounts.rotate_token(reg.db, acct, "api", admin)
            else:
                accounts.create_token(reg.db, acct, "api", by=admin)
        assert hook.ran
        accounts.set_disabled(reg.db, "ref", False, admin)
        live = reg.db.execute("SELECT count(*) FROM api_tokens WHERE revoked IS NULL").fetchone()[0]
    assert live == 0
    database.dispose()


def test_an_account_disabled_twice_at_once_is_disabled_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two admins disabling one account at once: each read it enabled, then both wrote the disable (the date
    overwritten, two audit entries). Now the state is read inside the transaction: the second is told it was
    already disabled, nothing written."""
    database = _fresh_accounts(tmp_path)
    admin = accounts.Actor("root", "admin", "test")
    with Registry(database) as reg:
        hook = OnNextWrite(monkeypatch, lambda: _disable_in(database, "ref", admin))
        hook.armed = True
        assert accounts.set_disabled(reg.db, "ref", True, admin) == "already disabled"
        assert hook.ran
        entries = reg.db.execute("SELECT count(*) FROM audit WHERE action = 'account-disable'").fetchone()[0]
    assert entries == 1
    database.dispose()


@pytest.mark.parametrize("how", ["disable", "reset"])
def test_a_sign_in_whose_account_is_disabled_or_reset_before_its_session_starts_gets_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The password was checked, then the session started in another transaction: a disable committing in between
    left a session that enabling the account again brought back (a disable ends every session); a password reset —
    the admin locking out whoever knew the old password — left the old password's holder a live session. Now the
    session starts only if the account is still active with the password that was checked."""
    database = _fresh_accounts(tmp_path)
    admin = accounts.Actor("root", "admin", "test")
    password = "correct horse battery staple"
    with Registry(database) as reg:
        accounts.create_account(reg.db, "alice", "Alice", "reviewer", password=password)
        acct = accounts.check_password(reg.db, "alice", password, "203.0.113.1")
        assert acct is not None

        def cut_off() -> None:
            with Registry(database) as other:
                if how == "disable":
                    accounts.set_disabled(other.db, "alice", True, admin)
                else:
                    accounts.set_temporary_password(other.db, "alice", "a temporary password 42", admin)
        hook = OnNextWrite(monkeypatch, cut_off)
        hook.armed = True
        with pytest.raises(InputError, match="sign in again"):
            accounts.start_session(reg.db, acct, dt.timedelta(hours=1), dt.timedelta(hours=8))
        assert hook.ran
        if how == "disable":
            accounts.set_disabled(reg.db, "alice", False, admin)
        live = reg.db.execute("SELECT count(*) FROM web_sessions WHERE ended IS NULL").fetchone()[0]
    assert live == 0
    database.dispose()


def test_a_review_recorded_after_waiting_for_the_lock_is_dated_when_it_was_recorded(
        service: Service, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A review was dated when the reviewer asked, then waited for the write lock: recorded after a decision (or
    review) that committed meanwhile, it said it came before it — the history out of order, and a decision that did
    not count it dated after it. Now a review the caller does not date is dated holding the lock, as decisions are."""
    s = service
    sub, body, _, bob, _ = _uploaded(s, runs)
    reviewed, released = _sent_while_the_lock_is_held(
        s, monkeypatch, lambda: bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body))
    assert reviewed.status_code == 201, reviewed.text
    at = s.table("SELECT at FROM reviews ORDER BY id DESC LIMIT 1")  # bob's, the last
    stamps = [r["reviewed"] for r in reviewed.json()["reviews"]]
    assert stamps and all(a >= iso(released) for a in stamps), (stamps, released)
    assert at and str(at[0][0]) >= iso(released), (at, released)
