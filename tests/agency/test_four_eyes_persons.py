"""Four-eyes counts people, not accounts: an account and the admin who last set its password (a reset, or the account's
creation with a password) count as one person for a while — the admin knew the password and could have changed it as
its "owner" — so their acceptances of a MUST do not make two. A reset by the server's operator is no person's."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fastapi.testclient import TestClient

from conformity.agency.migrations import SCHEMA_VERSION, migrate
from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from conformity.cli import cli
from conformity.db.connection import Database
from tests.agency.service_client import PASSWORD, Service, csrf_of, upload

TEMPORARY = "set by root for alice 2026"
OWN = "root chose this one as alice"
JSON = {"Accept": "application/json"}


def _root(s: Service) -> tuple[TestClient, str]:
    """An admin created on the server (no admin set its password), signed in."""
    with Registry(s.config.database) as reg:
        accounts.create_account(reg.db, "root", "Root", "admin", password=PASSWORD)
    c, _ = s.staff("root")
    return c, csrf_of(c.get("/staff/admin/accounts").text)


def _review(c: TestClient, sub: str, requirements: list[str], reason: str) -> list[tuple[int, str]]:
    """Each requirement reviewed (accepted) with the client's session: (status, problem detail or '')."""
    out = []
    for req in requirements:
        csrf = csrf_of(c.get(f"/staff/submissions/{sub}").text)
        r = c.post(f"/staff/submissions/{sub}/review", headers=JSON,
                   data={"csrf": csrf, "requirement": req, "verdict": "accepted", "reason": reason})
        out.append((r.status_code, r.json().get("detail", "") if r.status_code >= 400 else ""))
    return out


def _decide(c: TestClient, sub: str) -> str:
    r = c.post(f"/api/v1/staff/submissions/{sub}/decision", json={}) if "Authorization" in c.headers else \
        c.post(f"/staff/submissions/{sub}/decide", data={"csrf": csrf_of(c.get(f"/staff/submissions/{sub}").text)})
    assert r.status_code == 303, r.text
    return r.headers["location"]


def _submission(s: Service, bundle: Path) -> tuple[str, list[str]]:
    doc = upload(s.vendor(), bundle)
    return doc["submission"]["id"], [a["id"] for a in doc["decision"]["awaiting_review"]]  # type: ignore[index]


def _reset(root: TestClient, csrf: str, login: str) -> None:
    r = root.post(f"/staff/admin/accounts/{login}/reset-password", data={"csrf": csrf, "password": TEMPORARY})
    assert r.status_code == 303, r.text


def test_an_admin_and_the_account_whose_password_it_reset_do_not_make_two_reviewers(service: Service, runs) -> None:  # type: ignore[no-untyped-def]
    s = service
    sub, awaiting = _submission(s, runs.reference)
    root, csrf = _root(s)
    _reset(root, csrf, "alice")
    # root signs in as alice with the password it typed, and changes it as her "owner"
    puppet = s.client()
    r = puppet.post("/login", data={"login": "alice", "password": TEMPORARY, "csrf": csrf_of(puppet.get("/login").text),
                                    "next": "/staff"})
    assert r.headers["location"] == "/password"
    r = puppet.post("/password", data={"csrf": csrf_of(puppet.get("/password").text), "current": TEMPORARY,
                                       "new": OWN, "confirm": OWN})
    assert r.status_code == 303
    assert s.table("SELECT password_set_by FROM accounts WHERE login = 'alice'") == [("root",)]  # the owner's change kept it
    assert all(code == 303 for code, _ in _review(puppet, sub, awaiting, "read: as asked"))
    before = s.table("SELECT count(*) FROM reviews")
    refused = _review(root, sub, awaiting, "confirmed")
    assert all(code == 422 for code, _ in refused), refused
    assert "alice's password was set by root on " in refused[0][1]
    assert "their acceptances count as one person's" in refused[0][1]
    assert s.table("SELECT count(*) FROM reviews") == before  # nothing written
    dora, _ = s.staff("dora")
    assert "pending" in _decide(dora, sub)
    # a third person completes it
    bob, _ = s.staff("bob")
    assert all(code == 303 for code, _ in _review(bob, sub, awaiting, "read again: confirmed"))
    assert "labelled" in _decide(dora, sub)


def test_a_reset_after_both_acceptances_makes_them_one_persons_until_a_third_reviewer(service: Service, runs) -> None:  # type: ignore[no-untyped-def]
    """The decision judges the pair too (not only the review form): acceptances recorded before the reset."""
    s = service
    sub, awaiting = _submission(s, runs.reference)
    root, csrf = _root(s)
    alice, _ = s.staff("alice")
    assert all(code == 303 for code, _ in _review(alice, sub, awaiting, "read"))
    assert all(code == 303 for code, _ in _review(root, sub, awaiting, "confirmed"))
    _reset(root, csrf, "alice")
    dora, _ = s.staff("dora")
    assert "pending" in _decide(dora, sub)
    page = dora.get(f"/staff/submissions/{sub}").text
    assert page.count("Another acceptance does not count: alice&#39;s password was set by root on ") == len(awaiting)
    bob, _ = s.staff("bob")
    assert all(code == 303 for code, _ in _review(bob, sub, awaiting, "read again: confirmed"))
    assert "labelled" in _decide(dora, sub)


def test_the_pair_is_one_person_only_within_the_period_and_an_operator_reset_is_no_persons(
        service: Service, runs, database_target: Path | str) -> None:  # type: ignore[no-untyped-def]
    s = service
    root, csrf = _root(s)
    _reset(root, csrf, "alice")
    sub, awaiting = _submission(s, runs.reference)
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=91)).isoformat(timespec="seconds").replace("+00:00", "Z")
    with Registry(s.config.database) as reg, reg.db.write():
        reg.db.execute("UPDATE accounts SET password_set_at = ?, password_change_due = NULL WHERE login = 'alice'",
                       (old,))
    # 91 days on (the default period is 90), alice and root are two people again
    alice, _ = _signed_in(s, "alice", TEMPORARY)
    assert all(code == 303 for code, _ in _review(alice, sub, awaiting, "read"))
    assert all(code == 303 for code, _ in _review(root, sub, awaiting, "confirmed"))
    # the server's operator resets bob: no person set it, bob and root are two
    r = CliRunner().invoke(cli, ["agency", "account", "reset-password", "bob", "--password-stdin", "--database",
                                 str(database_target)], input=TEMPORARY + "\n")
    assert r.exit_code == 0, r.output
    assert s.table("SELECT password_set_by, password_set_at FROM accounts WHERE login = 'bob'") == [(None, None)]


def _signed_in(s: Service, login: str, password: str) -> tuple[TestClient, str]:
    c = s.client()
    r = c.post("/login", data={"login": login, "password": password, "csrf": csrf_of(c.get("/login").text),
                               "next": "/staff"})
    assert r.status_code == 303, r.text
    return c, ""


def test_an_admin_who_creates_a_reviewer_is_one_person_with_it_and_an_old_registry_gets_no_pairs(
        database_target: Path | str) -> None:
    """Step 10 on a registry at step 9, on each engine: its accounts' passwords were set by their owners (NULL);
    an account an admin creates with a password from then on names that admin."""
    database = Database(database_target, pool=0)
    conn = database.connect()
    try:
        assert migrate(conn, database.where, target=9) == 9
        with conn.write():
            conn.execute("INSERT INTO accounts (login, name, role, password_hash, created, password_change_due) VALUES "
                         "('carol', 'Carol', 'reviewer', 'x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
        assert migrate(conn, database.where) == SCHEMA_VERSION
        assert conn.execute("SELECT password_set_by, password_set_at FROM accounts").fetchall() == [(None, None)]
        accounts.create_account(conn, "eve", "Eve", "reviewer", password=PASSWORD, temporary=True,
                                by=accounts.Actor("carol", "admin", "127.0.0.1"))
        accounts.create_account(conn, "dan", "Dan", "reviewer", password=PASSWORD, temporary=True,
                                by=accounts.OPERATOR)
        rows = dict(conn.execute("SELECT login, password_set_by FROM accounts").fetchall())
        assert rows == {"carol": None, "eve": "carol", "dan": None}
    finally:
        conn.close()
        database.dispose()


def test_the_command_line_counts_people_over_the_period_it_is_given(database_target: Path | str, runs,  # type: ignore[no-untyped-def]
                                                                    home: Path, tmp_path: Path) -> None:
    """``usine agency review|decide`` used 90 days whatever the service was served with (``--same-person-days``):
    a reviewer pair the service counts as two people, the command line counted as one (and the reverse)."""
    from tests.agency.helpers import usine

    reg, out = str(database_target), tmp_path / "out"
    assert usine("agency", "decide", runs.reference, "--trust", runs.trust, "--registry", reg,
                 "--out", out).exit_code == 4
    doc = json.loads(next(out.glob("pending-sub_*.json")).read_text())
    sub, awaiting = doc["submission"], [a["id"] for a in doc["awaiting_review"]]
    with Registry(database_target) as registry:
        accounts.create_account(registry.db, "root", "Root", "admin", password=PASSWORD)
        accounts.create_account(registry.db, "alice", "Alice", "reviewer", password=TEMPORARY, temporary=True,
                                by=accounts.Actor("root", "admin", "127.0.0.1"))

    def review(who: str, *days: str) -> Any:
        return usine("agency", "review", sub, *awaiting, "--accept", "--reason", "read", "--reviewer", who,
                     "--registry", reg, *days)

    assert review("Alice (alice)").exit_code == 0
    refused = review("Root (root)")  # within the default period: one person's
    assert refused.exit_code == 2 and "their acceptances count as one person's" in refused.output, refused.output
    assert review("Root (root)", "--same-person-days", "0").exit_code == 0  # the service's 0: two people
    assert usine("agency", "decide", sub, "--registry", reg, "--out", out).exit_code == 4  # 90 days: still pending
    labelled = usine("agency", "decide", sub, "--registry", reg, "--out", out, "--same-person-days", "0")
    assert labelled.exit_code == 0 and labelled.output.startswith("LABELLED"), labelled.output
