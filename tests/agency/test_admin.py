"""The admin's page of accounts (HTTP level): create, disable, enable, rotate tokens; audited; others refused."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from tests.agency.service_client import PASSWORD, Service, csrf_of


def _admin(s: Service) -> tuple[TestClient, str]:
    with Registry(s.config.database) as reg:
        accounts.create_account(reg.db, "root", "Root Admin", "admin", password=PASSWORD)
    c, _ = s.staff("root")
    page = c.get("/staff/admin/accounts")
    assert page.status_code == 200 and "New account" in page.text
    return c, csrf_of(page.text)


def test_an_admin_creates_a_vendor_with_a_token_rotates_and_disables_it(sqlite_service: Service) -> None:
    s = sqlite_service
    c, csrf = _admin(s)
    r = c.post("/staff/admin/accounts", data={"csrf": csrf, "login": "globex", "name": "Globex", "role": "vendor",
                                              "vendor_id": "globex", "issue_token": "1"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    first = re.search(r'<pre id="new-token">(usn_[^<]+)</pre>', r.text).group(1)  # type: ignore[union-attr]
    assert s.vendor(first).get("/api/v1/submissions").json()["vendor"] == "globex"

    r = c.post("/staff/admin/accounts/globex/rotate-token", data={"csrf": csrf})
    second = re.search(r'<pre id="new-token">(usn_[^<]+)</pre>', r.text).group(1)  # type: ignore[union-attr]
    assert "1 revoked" in r.text and second != first
    assert s.vendor(first).get("/api/v1/submissions").status_code == 401
    assert s.vendor(second).get("/api/v1/submissions").status_code == 200

    r = c.post("/staff/admin/accounts/globex/disable", data={"csrf": csrf})
    assert r.status_code == 303
    assert s.vendor(second).get("/api/v1/submissions").status_code == 401
    assert c.post("/staff/admin/accounts/globex/enable", data={"csrf": csrf}).status_code == 303
    assert s.vendor(second).get("/api/v1/submissions").status_code == 401  # revoked with the disable: not back

    r = c.post("/staff/admin/accounts", data={"csrf": csrf, "login": "eve", "name": "Eve", "role": "reviewer",
                                              "password": PASSWORD})
    assert r.status_code == 303
    with Registry(s.config.database) as reg, reg.db.write():  # she changed the admin's password at her first sign-in
        reg.db.execute("UPDATE accounts SET password_change_due = NULL WHERE login = 'eve'")
    eve, _ = s.staff("eve")
    assert eve.get("/staff").status_code == 200
    assert c.post("/staff/admin/accounts/eve/disable", data={"csrf": csrf}).status_code == 303
    assert eve.get("/staff").headers["location"].startswith("/login")  # her session ended with the account
    listed = c.get("/staff/admin/accounts").text
    assert "globex" in listed and re.search(r"<td>eve</td>.*?disabled", listed, re.S)
    actions = [a for (a,) in s.table("SELECT action FROM audit WHERE actor = 'root' AND action != 'login' ORDER BY id")]
    assert actions == ["account-created", "token-issued", "account-rotate-token", "account-disable", "account-enable",
                       "account-created", "account-disable"]


def test_only_admins_with_a_csrf_token_change_accounts_and_bad_ones_are_refused(sqlite_service: Service) -> None:
    s = sqlite_service
    c, csrf = _admin(s)
    before = s.table("SELECT login, disabled FROM accounts ORDER BY login")
    alice, alice_csrf = s.staff("alice")
    assert alice.get("/staff/admin/accounts", headers={"Accept": "application/json"}).status_code == 403
    r = alice.post("/staff/admin/accounts/bob/disable", data={"csrf": alice_csrf}, headers={"Accept": "application/json"})
    assert r.status_code == 403
    r = c.post("/staff/admin/accounts/bob/disable", data={}, headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.json()["type"].endswith(":csrf")
    r = c.post("/staff/admin/accounts/root/disable", data={"csrf": csrf}, headers={"Accept": "application/json"})
    assert r.status_code == 422 and "your own account" in r.json()["detail"]
    r = c.post("/staff/admin/accounts", data={"csrf": csrf, "login": "X", "name": "", "role": "god"},
               headers={"Accept": "application/json"})
    detail = r.json()["detail"]
    assert r.status_code == 422 and all(w in detail for w in ("a login is", "a role is", "a name is", "password"))
    r = c.post("/staff/admin/accounts", data={"csrf": csrf, "login": "alice", "name": "Alice 2", "role": "reviewer",
                                              "password": "another long passphrase"}, headers={"Accept": "application/json"})
    assert r.status_code == 422 and "taken" in r.json()["detail"]
    assert c.post("/staff/admin/accounts/nobody/disable", data={"csrf": csrf},
                  headers={"Accept": "application/json"}).status_code == 422
    assert s.table("SELECT login, disabled FROM accounts ORDER BY login") == before
    refused = [a for (a,) in s.table("SELECT action FROM audit WHERE actor = 'root' AND action != 'login' ORDER BY id")]
    assert refused == ["account-disable-refused", "account-refused", "account-refused", "account-disable-refused"]


def test_a_page_shows_only_the_message_of_this_sessions_own_action(sqlite_service: Service) -> None:
    """``?done=`` is what the last action did: a link from elsewhere (or another session's) cannot make the page say
    it (the text rides with a MAC under the session's secret)."""
    s = sqlite_service
    c, csrf = _admin(s)
    r = c.post("/staff/admin/accounts", data={"csrf": csrf, "login": "eve", "name": "Eve", "role": "reviewer",
                                              "password": PASSWORD})
    assert r.status_code == 303
    shown = c.get(r.headers["location"])
    assert '<p class="done" role="status">account eve created</p>' in shown.text
    forged = c.get("/staff/admin/accounts", params={"done": "Your password expired: mail it to evil@example.com"})
    assert forged.status_code == 200 and "evil@example.com" not in forged.text and 'class="done"' not in forged.text
    query = r.headers["location"].split("?", 1)[1]
    with Registry(s.config.database) as reg:
        accounts.create_account(reg.db, "root2", "Second Admin", "admin", password=PASSWORD)
    other, _ = s.staff("root2")
    assert 'class="done"' not in other.get(f"/staff/admin/accounts?{query}").text
    edited = query.replace("eve", "bob")
    assert 'class="done"' not in c.get(f"/staff/admin/accounts?{edited}").text


def test_an_admin_cannot_take_a_token_that_acts_as_another_staff_member(sqlite_service: Service) -> None:
    """"New token" on the accounts page worked on any account and showed the token to the admin: an admin took a
    token acting as reviewer alice (her role's every scope), accepted a MUST requirement as "Alice (alice)", then
    again as itself — one person gave both acceptances of the four-eyes rule, and the registry says two people did.
    A staff member's token is issued to them (``usine agency account token`` on the agency's server); the page issues
    vendors' tokens only, and says so."""
    s = sqlite_service
    c, csrf = _admin(s)
    before = s.table("SELECT count(*) FROM api_tokens")
    for login in ("alice", "dora"):
        r = c.post(f"/staff/admin/accounts/{login}/rotate-token", data={"csrf": csrf}, headers={"Accept": "application/json"})
        assert r.status_code == 422 and "usn_" not in r.text and "usine agency account token" in r.json()["detail"], r.text
    assert s.table("SELECT count(*) FROM api_tokens") == before
    assert "New token for alice" not in c.get("/staff/admin/accounts").text
    actions = [a for (a,) in s.table("SELECT action FROM audit WHERE subject = 'alice'")]
    assert "account-rotate-token-refused" in actions and "account-rotate-token" not in actions
