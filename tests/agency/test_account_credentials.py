"""What ends an account's credentials: an admin's reset and a disable each end every session and revoke every API token
of the account, the owner's password change ends its other sessions, each in one transaction with its audit entry (as
are an account's creation, a token's issue and a rotation); an admin's password is set on the server only (no admin
signs in as another), where an admin every other admin disabled is enabled again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conformity.agency.registry import Registry
from conformity.agency.service import accounts, audit
from conformity.cli import cli
from conformity.errors import InputError
from tests.agency.service_client import PASSWORD, Service, csrf_of

IDLE, MAXIMUM = dt.timedelta(minutes=30), dt.timedelta(hours=8)
ROOT = accounts.Actor("root", "admin", "192.0.2.1")
TEMPORARY = "a temporary one, 2026"
OWN = "the owner's own passphrase"


def _vendor(reg: Registry) -> accounts.Account:
    return accounts.create_account(reg.db, "acme", "ACME", "vendor", vendor_id="acme", password=PASSWORD)


def _live(reg: Registry, token: str) -> bool:
    return accounts.token_account(reg.db, token) is not None


def _audit(reg: Registry, action: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in reg.db.execute("SELECT actor, subject, detail, client FROM audit WHERE action = ? "
                                             "ORDER BY id", (action,)).fetchall()]


def test_a_reset_and_a_disable_each_revoke_every_token_of_the_account_and_its_owners_change_keeps_them(
        database_target: Path | str) -> None:
    """A stolen token outlived each of them: a reset ended sessions only, and a disabled account's tokens were refused
    only while it was disabled — enabled again, every one of them worked again. The owner's own change revokes none
    (a password mints no token: the vendor's CI would stop for nothing), and ends the other sessions."""
    with Registry(database_target) as reg:
        acme = _vendor(reg)
        other = accounts.create_account(reg.db, "globex", "Globex", "vendor", vendor_id="globex")
        bystander = accounts.create_token(reg.db, other, "ci")

        first, second = accounts.create_token(reg.db, acme, "ci"), accounts.create_token(reg.db, acme, "laptop")
        sid, _ = accounts.start_session(reg.db, acme, IDLE, MAXIMUM)
        what = accounts.set_temporary_password(reg.db, "acme", TEMPORARY, ROOT)
        assert not _live(reg, first) and not _live(reg, second)
        assert accounts.session(reg.db, sid, IDLE, MAXIMUM) is None
        assert "2 API token(s) revoked" in what and "set by root" in what
        assert _audit(reg, "account-reset-password") == [("root", "acme", what, "192.0.2.1")]

        third = accounts.create_token(reg.db, acme, "ci")
        assert "1 API token(s) revoked" in accounts.set_disabled(reg.db, "acme", True, ROOT)
        assert not _live(reg, third)
        accounts.set_disabled(reg.db, "acme", False, ROOT)
        assert not _live(reg, third)  # enabled again: its former tokens stay revoked
        assert [a for a, _, _, _ in _audit(reg, "account-disable") + _audit(reg, "account-enable")] == ["root", "root"]

        fourth = accounts.create_token(reg.db, acme, "ci")
        sid = accounts.change_password(reg.db, acme, TEMPORARY, OWN, OWN, "203.0.113.9", idle=IDLE, maximum=MAXIMUM)
        assert _live(reg, fourth)
        assert accounts.session(reg.db, sid, IDLE, MAXIMUM) is not None  # the browser that changed it goes on
        assert "revoked" not in _audit(reg, "password-changed")[0][2]
        assert _live(reg, bystander)  # another account's token is not touched
        assert reg.db.execute("SELECT password_change_due FROM accounts WHERE login = 'acme'").fetchone()[0] is None


def test_a_password_change_that_fails_midway_changes_nothing(database_target: Path | str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The change was two transactions (the new hash with the sessions ended, then the audit entry and the new
    session): a crash between them left the password changed, unaudited, and the browser signed out. One transaction
    now: the crash (here while writing the audit entry) leaves the old password, sessions and tokens."""
    real = audit.record

    def crash(db: Any, actor: str, role: str, action: str, *args: Any, **kwargs: Any) -> None:
        if action == "password-changed":
            raise RuntimeError("the worker died here")
        real(db, actor, role, action, *args, **kwargs)

    with Registry(database_target) as reg:
        acme = _vendor(reg)
        token = accounts.create_token(reg.db, acme, "ci")
        sid, _ = accounts.start_session(reg.db, acme, IDLE, MAXIMUM)
        monkeypatch.setattr(audit, "record", crash)
        with pytest.raises(RuntimeError):
            accounts.change_password(reg.db, acme, PASSWORD, OWN, OWN, "203.0.113.9", idle=IDLE, maximum=MAXIMUM)
        monkeypatch.setattr(audit, "record", real)
        assert not reg.db.in_transaction
        assert accounts.check_password(reg.db, "acme", PASSWORD, "203.0.113.9") is not None
        assert accounts.check_password(reg.db, "acme", OWN, "203.0.113.9") is None
        assert accounts.session(reg.db, sid, IDLE, MAXIMUM) is not None and _live(reg, token)
        assert reg.db.execute("SELECT count(*) FROM web_sessions").fetchone()[0] == 1  # no new session either


def test_a_password_change_checked_against_a_password_an_admin_replaced_meanwhile_is_refused(
        database_target: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever holds the old (stolen) password starts a change; the admin resets the account between the check and
    the write: the change is refused, the admin's reset stands."""
    real = accounts.check_password

    def then_reset(db: Any, *args: Any, **kwargs: Any) -> accounts.Account | None:
        found = real(db, *args, **kwargs)
        accounts.set_temporary_password(db, "acme", TEMPORARY, ROOT)
        return found

    with Registry(database_target) as reg:
        acme = _vendor(reg)
        monkeypatch.setattr(accounts, "check_password", then_reset)
        with pytest.raises(InputError, match="set meanwhile"):
            accounts.change_password(reg.db, acme, PASSWORD, OWN, OWN, "203.0.113.9", idle=IDLE, maximum=MAXIMUM)
        monkeypatch.setattr(accounts, "check_password", real)
        assert accounts.check_password(reg.db, "acme", TEMPORARY, "203.0.113.9") is not None
        assert _audit(reg, "password-changed") == []


def test_an_admin_cannot_set_another_admins_password_on_the_web_the_server_operator_can(
        sqlite_service: Service) -> None:
    """An admin could set another admin's password, sign in with it, change it and act as that admin (reviews and
    decisions under their name: four-eyes with one pair). The web refuses an admin's reset (audited); the operator
    sets it on the server, which ends the admin's sessions and tokens and makes the owner change it."""
    s = sqlite_service
    with Registry(s.config.database) as reg:
        accounts.create_account(reg.db, "root", "Root", "admin", password=PASSWORD)
        other = accounts.create_account(reg.db, "root2", "Second Admin", "admin", password=PASSWORD)
        token = accounts.create_token(reg.db, other, "cli")
    root, _ = s.staff("root")
    csrf = csrf_of(root.get("/staff/admin/accounts").text)
    root2, _ = s.staff("root2")
    r = root.post("/staff/admin/accounts/root2/reset-password", data={"csrf": csrf, "password": TEMPORARY},
                  headers={"Accept": "application/json"})
    assert r.status_code == 422 and "never by another admin" in r.json()["detail"]
    assert root2.get("/staff").status_code == 200
    assert s.client().get("/api/v1/staff/queue", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert s.table("SELECT actor, subject FROM audit WHERE action = 'account-reset-password-refused'") == [
        ("root", "root2")]
    # a reviewer's reset on the web still works (a person who lost theirs)
    assert root.post("/staff/admin/accounts/alice/reset-password",
                     data={"csrf": csrf, "password": TEMPORARY}).status_code == 303

    result = CliRunner().invoke(cli, ["agency", "account", "reset-password", "root2", "--password-stdin",
                                      "--database", str(s.config.database.target)], input=TEMPORARY + "\n")
    assert result.exit_code == 0, result.output
    assert "1 API token(s) revoked" in result.output
    assert root2.get("/staff").headers["location"].startswith("/login")
    assert s.client().get("/api/v1/staff/queue", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    c = s.client()
    r = c.post("/login", data={"login": "root2", "password": TEMPORARY, "csrf": csrf_of(c.get("/login").text),
                               "next": "/staff"})
    assert r.headers["location"] == "/password"
    assert s.table("SELECT actor, subject FROM audit WHERE action = 'account-reset-password' ORDER BY id") == [
        ("root", "alice"), ("cli", "root2")]
    result = CliRunner().invoke(cli, ["agency", "account", "reset-password", "nobody", "--password-stdin",
                                      "--database", str(s.config.database.target)], input=TEMPORARY + "\n")
    assert result.exit_code == 2 and "no account 'nobody'" in result.output


def test_an_admin_creates_no_admin_account_on_the_web(sqlite_service: Service) -> None:
    """An admin created another admin on the web with a password they typed, so they could sign in as that new admin
    first, change its password and act as a second admin (the same escalation as setting one's password). An admin
    account is now created on the server only; the page offers no admin role, and a forged form is refused and
    audited."""
    s = sqlite_service
    with Registry(s.config.database) as reg:
        accounts.create_account(reg.db, "root", "Root", "admin", password=PASSWORD)
    root, _ = s.staff("root")
    page = root.get("/staff/admin/accounts").text
    assert '<option value="reviewer">' in page and '<option value="admin">' not in page
    r = root.post("/staff/admin/accounts", data={"csrf": csrf_of(page), "login": "puppet", "name": "Puppet",
                                                 "role": "admin", "password": TEMPORARY},
                  headers={"Accept": "application/json"})
    assert r.status_code == 422 and "created on the agency's server" in r.json()["detail"]
    assert s.table("SELECT login FROM accounts WHERE login = 'puppet'") == []
    assert s.table("SELECT actor, action, subject FROM audit WHERE subject = 'puppet'") == [
        ("root", "account-refused", "puppet")]


@pytest.mark.parametrize("action", ["account-created", "token-issued", "account-rotate-token"])
def test_a_creation_an_issue_or_a_rotation_whose_audit_entry_fails_changes_nothing(
        action: str, database_target: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each was written, then audited in another transaction: a crash between them left an account or a live token
    the audit log never mentioned. One transaction now."""
    real = audit.record

    def crash(db: Any, actor: str, role: str, what: str, *args: Any, **kwargs: Any) -> None:
        if what == action:
            raise RuntimeError("the worker died here")
        real(db, actor, role, what, *args, **kwargs)

    with Registry(database_target) as reg:
        acme = _vendor(reg)
        first = accounts.create_token(reg.db, acme, "ci", by=ROOT)
        monkeypatch.setattr(audit, "record", crash)
        with pytest.raises(RuntimeError):
            if action == "account-created":
                accounts.create_account(reg.db, "globex", "Globex", "vendor", vendor_id="globex", by=ROOT)
            elif action == "token-issued":
                accounts.create_token(reg.db, acme, "laptop", by=ROOT)
            else:
                accounts.rotate_token(reg.db, acme, "rotated", ROOT)
        monkeypatch.setattr(audit, "record", real)
        assert not reg.db.in_transaction
        assert reg.db.execute("SELECT login FROM accounts ORDER BY id").fetchall() == [("acme",)]
        assert reg.db.execute("SELECT name FROM api_tokens WHERE revoked IS NULL").fetchall() == [("ci",)]
        assert _live(reg, first)
        assert [(a, s) for a, s, _, _ in _audit(reg, "token-issued")] == [("root", "acme")]


def test_the_server_disables_and_enables_any_account_an_admin_included(database_target: Path | str) -> None:
    """The web disables any account but one's own, so one rogue admin could disable every other admin, and no command
    enabled them again. ``usine agency account disable|enable`` on the server does, audited as ``cli``."""
    with Registry(database_target) as reg:
        admin = accounts.create_account(reg.db, "root2", "Second Admin", "admin", password=PASSWORD)
        token = accounts.create_token(reg.db, admin, "cli")
        accounts.set_disabled(reg.db, "root2", True, ROOT)
    target = str(database_target)
    result = CliRunner().invoke(cli, ["agency", "account", "enable", "root2", "--database", target])
    assert result.exit_code == 0 and "root2: enabled" in result.output, result.output
    with Registry(database_target) as reg:
        assert accounts.account(reg.db, "root2") is not None and not _live(reg, token)
        token = accounts.create_token(reg.db, accounts.account(reg.db, "root2"), "cli")  # type: ignore[arg-type]
    result = CliRunner().invoke(cli, ["agency", "account", "disable", "root2", "--database", target])
    assert result.exit_code == 0 and "1 API token(s) revoked" in result.output, result.output
    result = CliRunner().invoke(cli, ["agency", "account", "disable", "root2", "--database", target])
    assert result.exit_code == 0 and "already disabled" in result.output
    result = CliRunner().invoke(cli, ["agency", "account", "enable", "nobody", "--database", target])
    assert result.exit_code == 2 and "nobody" in result.output
    with Registry(database_target) as reg:
        assert accounts.account(reg.db, "root2") is None and not _live(reg, token)
        assert [(a, s) for a, s, _, _ in _audit(reg, "account-enable") + _audit(reg, "account-disable")] == [
            ("cli", "root2"), ("root", "root2"), ("cli", "root2")]


@pytest.mark.parametrize("args", [["token", "ann"], ["disable", "ann"], ["enable", "ann"],
                                  ["reset-password", "ann", "--password-stdin"]],
                         ids=["token", "disable", "enable", "reset-password"])
def test_a_command_on_an_account_given_a_registry_that_is_not_there_creates_none(tmp_path: Path,
                                                                                 args: list[str]) -> None:
    """A mistyped --database made a new, empty registry there (the folders and a SQLite file, with its schema), then
    said "no active account 'ann'", naming neither the option nor the file; an empty file got the schema written in."""
    mistyped = tmp_path / "typo" / "registry.sqlite3"
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    said = CliRunner().invoke(cli, ["agency", "account", *args, "--database", str(empty)],
                              input="a temporary password\n", env={"USINE_REGISTRY": None})
    assert said.exit_code == 2 and str(empty) in said.output, said.output
    assert empty.read_bytes() == b""  # SQLite's empty database: the schema was written into it
    result = CliRunner().invoke(cli, ["agency", "account", *args, "--database", str(mistyped)],
                                input="a temporary password\n", env={"USINE_REGISTRY": None})
    assert result.exit_code == 2, result.output
    assert str(mistyped) in result.output and "no registry" in result.output, result.output
    assert not (tmp_path / "typo").exists()
