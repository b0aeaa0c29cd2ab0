"""Passwords set by someone else (an admin creating an account, or setting one a person lost) are changed by their
owner at the next sign-in, before anything else; anyone changes their own (the current one asked); a change ends every
session of the account."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from conformity.agency.migrations import SCHEMA_VERSION, migrate
from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from conformity.catalog import Catalog
from conformity.cli import cli
from conformity.db.connection import Database
from tests.agency.helpers import Runs
from tests.agency.service_client import PASSWORD, Service, csrf_of, make_service

TEMPORARY = "set by the admin 2026"
OWN = "chosen by eve herself, long"



def _sign_in(s: Service, login: str, password: str) -> tuple[TestClient, str]:
    """A client that posted the sign-in form, and where the answer sends it."""
    c = s.client()
    r = c.post("/login", data={"login": login, "password": password, "csrf": csrf_of(c.get("/login").text),
                               "next": "/staff"})
    return c, r.headers.get("location", str(r.status_code))


def _admin(s: Service) -> tuple[TestClient, str]:
    with Registry(s.config.database) as reg:
        accounts.create_account(reg.db, "root", "Root Admin", "admin", password=PASSWORD)
    c, _ = s.staff("root")
    return c, csrf_of(c.get("/staff/admin/accounts").text)


def _change(c: TestClient, current: str, new: str, confirm: str | None = None) -> object:
    return c.post("/password", data={"csrf": csrf_of(c.get("/password").text), "current": current, "new": new,
                                     "confirm": new if confirm is None else confirm},
                  headers={"Accept": "application/json"})


def test_an_account_the_admin_created_changes_its_password_before_anything_else(service: Service) -> None:
    s = service
    admin, csrf = _admin(s)
    r = admin.post("/staff/admin/accounts", data={"csrf": csrf, "login": "eve", "name": "Eve", "role": "reviewer",
                                                  "password": TEMPORARY})
    assert r.status_code == 303
    eve, went = _sign_in(s, "eve", TEMPORARY)
    assert went == "/password"
    page = eve.get("/password")
    assert page.status_code == 200 and "set by an administrator" in page.text
    # every other page sends her to the password page; JSON says why; nothing is done
    assert eve.get("/staff").headers["location"] == "/password"
    assert eve.get("/staff/audit").headers["location"] == "/password"
    r = eve.get("/staff", headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.json()["type"].endswith(":password-change-required")
    # refused changes: wrong current password, too short, not confirmed, the same
    for current, new, confirm, says in ((PASSWORD, OWN, OWN, "current password is wrong"),
                                        (TEMPORARY, "short", "short", "at least 12 characters"),
                                        (TEMPORARY, OWN, OWN + "x", "confirmation differ"),
                                        (TEMPORARY, TEMPORARY, TEMPORARY, "is the current one")):
        r = _change(eve, current, new, confirm)
        assert r.status_code == 422 and says in r.json()["detail"], (says, r.text)  # type: ignore[attr-defined]
    assert eve.get("/staff").headers["location"] == "/password"
    r = eve.post("/password", data={"csrf": "forged", "current": TEMPORARY, "new": OWN, "confirm": OWN},
                 headers={"Accept": "application/json"})
    assert r.status_code == 403

    other_browser, _ = _sign_in(s, "eve", TEMPORARY)
    r = _change(eve, TEMPORARY, OWN)
    assert r.status_code == 303 and r.headers["location"] == "/staff"  # type: ignore[attr-defined]
    assert eve.get("/staff").status_code == 200  # a new session, her own password
    assert other_browser.get("/staff").headers["location"].startswith("/login")  # every other session ended
    assert _sign_in(s, "eve", TEMPORARY)[1] == "401"  # the admin's password opens nothing now
    assert _sign_in(s, "eve", OWN)[1] == "/staff"
    actions = [a for (a,) in s.table("SELECT action FROM audit WHERE actor = 'eve' ORDER BY id")]
    assert actions.count("password-change-refused") == 4 and "password-changed" in actions
    details = " ".join(str(d) for (d,) in s.table("SELECT detail FROM audit"))
    assert TEMPORARY not in details and OWN not in details


def test_an_admin_sets_a_lost_password_which_ends_the_sessions_and_is_changed_at_the_next_sign_in(
        sqlite_service: Service) -> None:
    s = sqlite_service
    admin, csrf = _admin(s)
    bob, _ = s.staff("bob")
    assert bob.get("/staff").status_code == 200
    accept = {"Accept": "application/json"}
    r = admin.post("/staff/admin/accounts/bob/reset-password", data={"csrf": csrf, "password": "short"}, headers=accept)
    assert r.status_code == 422 and "at least 12" in r.json()["detail"]
    assert bob.get("/staff").status_code == 200  # refused: nothing changed
    r = admin.post("/staff/admin/accounts/root/reset-password", data={"csrf": csrf, "password": TEMPORARY},
                   headers=accept)
    assert r.status_code == 422 and "your password page" in r.json()["detail"]
    r = admin.post("/staff/admin/accounts/bob/reset-password", data={"csrf": csrf, "password": TEMPORARY})
    assert r.status_code == 303
    assert bob.get("/staff").headers["location"].startswith("/login")  # his session ended
    assert _sign_in(s, "bob", PASSWORD)[1] == "401"
    bob, went = _sign_in(s, "bob", TEMPORARY)
    assert went == "/password"
    assert _change(bob, TEMPORARY, "bob's own passphrase").status_code == 303  # type: ignore[attr-defined]
    assert bob.get("/staff").status_code == 200
    assert s.table("SELECT action FROM audit WHERE actor = 'root' AND action LIKE '%reset%' ORDER BY id") == [
        ("account-reset-password-refused",), ("account-reset-password-refused",), ("account-reset-password",)]


def test_anyone_changes_their_own_password_and_their_other_sessions_end(sqlite_service: Service) -> None:
    s = sqlite_service
    alice, _ = s.staff("alice")
    elsewhere, _ = s.staff("alice")
    assert "set by an administrator" not in alice.get("/password").text
    assert _change(alice, PASSWORD, "alice's new passphrase").status_code == 303  # type: ignore[attr-defined]
    assert alice.get("/staff").status_code == 200
    assert elsewhere.get("/staff").headers["location"].startswith("/login")
    # a vendor too, back to its own page
    ref, went = _sign_in(s, "ref", PASSWORD)
    assert went == "/vendor"
    r = _change(ref, PASSWORD, "the reference vendor's new one")
    assert r.headers["location"] == "/vendor"  # type: ignore[attr-defined]
    assert s.client().get("/password").headers["location"].startswith("/login")  # signed in only


def test_the_command_line_creates_an_account_whose_password_is_temporary(sqlite_service: Service) -> None:
    s = sqlite_service
    database = str(s.config.database.target)
    result = CliRunner().invoke(cli, ["agency", "account", "add", "zoe", "--name", "Zoe", "--role", "decider",
                                      "--password-stdin", "--temporary", "--database", database], input=TEMPORARY + "\n")
    assert result.exit_code == 0, result.output
    assert _sign_in(s, "zoe", TEMPORARY)[1] == "/password"
    result = CliRunner().invoke(cli, ["agency", "account", "add", "yan", "--name", "Yan", "--role", "decider",
                                      "--password-stdin", "--database", database], input=TEMPORARY + "\n")
    assert result.exit_code == 0, result.output
    assert _sign_in(s, "yan", TEMPORARY)[1] == "/staff"  # the operator's own account: no change asked


def test_a_vendor_whose_password_is_due_reads_nothing_through_the_api_with_its_session(sqlite_service: Service) -> None:
    """The vendor's pages read ``/api/v1/submissions`` with the browser's session (GET, no token): that path took the
    session's account without asking whether its password was set by an admin, so a session that may only change its
    password read the vendor's submissions, findings and reviewers' reasons. It answers 403 password-change-required
    now, like every page; the vendor's API token was revoked with the reset (whoever had the password may have had
    it too), a new one issued to the vendor reads them."""
    s = sqlite_service
    admin, csrf = _admin(s)
    up = s.vendor().post("/api/v1/submissions", content=b"PK\x03\x04 not a bundle",
                         headers={"Content-Type": "application/zip"}).json()
    r = admin.post("/staff/admin/accounts/ref/reset-password", data={"csrf": csrf, "password": TEMPORARY})
    assert r.status_code == 303
    ref, went = _sign_in(s, "ref", TEMPORARY)
    assert went == "/password"
    assert ref.get("/vendor").headers["location"] == "/password"
    for path in ("/api/v1/submissions", f"/api/v1/submissions/{up['id']}"):
        r = ref.get(path)
        assert r.status_code == 403 and r.json()["type"].endswith(":password-change-required"), (path, r.text)
        assert "findings" not in r.json() and "not a zip" not in r.text
    assert s.vendor().get(f"/api/v1/submissions/{up['id']}").status_code == 401
    with Registry(s.config.database) as reg:
        acct = accounts.account(reg.db, "ref")
        assert acct is not None
        fresh = accounts.create_token(reg.db, acct, "ci")
    assert s.vendor(fresh).get(f"/api/v1/submissions/{up['id']}").status_code == 200
    assert _change(ref, TEMPORARY, OWN).status_code == 303  # type: ignore[attr-defined]
    assert ref.get("/api/v1/submissions").json()["submissions"][0]["id"] == up["id"]


def test_a_registry_at_step_8_keeps_its_accounts_sessions_and_tokens_whose_passwords_are_their_owners(
        database_target: Path | str, runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> None:
    """Step 9 (password_change_due) on a registry the service already ran on (step 8), on each engine: an account
    made before it signs in to its pages (its password was never flagged as an admin's), its live session and its
    API token go on working, and an admin's reset then flags it."""
    database = Database(database_target, pool=0)
    conn = database.connect()
    try:
        assert migrate(conn, database.where, target=8) == 8
        with conn.write():
            conn.execute("INSERT INTO accounts (login, name, role, password_hash, created) VALUES "
                         "('carol', 'Carol', 'decider', ?, '2026-01-01T00:00:00Z')", (accounts._hasher.hash(PASSWORD),))
    finally:
        conn.close()
        database.dispose()
    s = make_service(database_target, runs, catalog, home, tmp_path)
    try:
        assert s.table("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]
        assert s.table("SELECT login FROM accounts WHERE password_change_due IS NOT NULL") == []
        carol, went = _sign_in(s, "carol", PASSWORD)
        assert went == "/staff" and carol.get("/staff").status_code == 200
        with Registry(s.config.database) as reg:
            acct = accounts.account(reg.db, "carol")
            assert acct is not None
            token = accounts.create_token(reg.db, acct, "cli", ("decide",))
        r = s.client().get("/api/v1/staff/queue", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403 and "may not review" in r.text  # the token is hers (a decider's), read as such
        admin, csrf = _admin(s)
        assert admin.post("/staff/admin/accounts/carol/reset-password",
                          data={"csrf": csrf, "password": TEMPORARY}).status_code == 303
        assert carol.get("/staff").headers["location"].startswith("/login")
        assert _sign_in(s, "carol", TEMPORARY)[1] == "/password"
    finally:
        s.config.database.dispose()


def test_password_attempts_sent_at_once_are_counted_before_they_are_checked(sqlite_service: Service) -> None:
    """QA (agencyattack, not fixed then): sign-in and /password checked the throttle, then the password (tens of
    milliseconds of argon2), then recorded the failure: attempts sent at once to several workers all passed the throttle
    before any failure was written. An attempt is now counted first (:func:`accounts.attempt`): here five attempts in
    flight at once — each counted, none checked yet — and a limit of three: the fourth and fifth wait."""
    import datetime as dt

    s = sqlite_service
    window = dt.timedelta(minutes=15)
    with Registry(s.config.database) as reg:
        started = [accounts.attempt(reg.db, "alice", "198.51.100.7", window, 3, 100) for _ in range(5)]
        assert [wait is None for _, wait in started] == [True, True, True, False, False]
        assert all(wait and wait > 0 for _, wait in started[3:])
        # the three let through are checked: two wrong (their counted failure kept), one right (taken back)
        (p1, _), (p2, _), (p3, _) = started[:3]
        assert accounts.check_password(reg.db, "alice", "wrong one", "198.51.100.7", p1) is None
        assert accounts.check_password(reg.db, "alice", "wrong two", "198.51.100.7", p2) is None
        assert accounts.check_password(reg.db, "alice", PASSWORD, "198.51.100.7", p3) is not None
    assert s.table("SELECT count(*) FROM login_failures WHERE login = 'alice'") == [(2,)]
