"""Web sessions: idle expiry pushed forward at most once a minute (a page is a read), never past the maximum."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient
from httpx import Response

from conformity.agency.registry import Registry, iso
from conformity.agency.service import accounts
from tests.agency.service_client import PASSWORD, Service

IDLE, MAXIMUM = dt.timedelta(minutes=30), dt.timedelta(hours=8)


def _row(reg: Registry) -> tuple[str, str]:
    return tuple(reg.db.execute("SELECT last_seen, expires FROM web_sessions").fetchone())


def _set(reg: Registry, **columns: dt.datetime) -> None:
    with reg.write() as db:
        for name, when in columns.items():
            db.execute(f"UPDATE web_sessions SET {name} = ?", (iso(when),))


def test_a_session_is_touched_at_most_once_a_minute_and_ends_when_idle(tmp_path: Path) -> None:
    with Registry(tmp_path / "registry.sqlite3") as reg:
        acct = accounts.create_account(reg.db, "alice", "Alice", "reviewer", password="a long enough password")
        sid, _ = accounts.start_session(reg.db, acct, IDLE, MAXIMUM)
        first = _row(reg)
        assert accounts.session(reg.db, sid, IDLE, MAXIMUM) is not None
        assert _row(reg) == first  # used again within the minute: nothing written
        now = dt.datetime.now(dt.UTC)
        _set(reg, last_seen=now - dt.timedelta(minutes=2), expires=now + dt.timedelta(minutes=28))
        live = accounts.session(reg.db, sid, IDLE, MAXIMUM)
        assert live is not None and live.expires >= iso(now + IDLE - dt.timedelta(seconds=5))
        assert _row(reg)[1] == live.expires  # pushed forward, and recorded
        _set(reg, created=now - MAXIMUM + dt.timedelta(minutes=5), last_seen=now - dt.timedelta(minutes=2))
        capped = accounts.session(reg.db, sid, IDLE, MAXIMUM)
        assert capped is not None and capped.expires <= iso(now + dt.timedelta(minutes=5, seconds=5))  # the maximum
        _set(reg, expires=now - dt.timedelta(seconds=1))
        assert accounts.session(reg.db, sid, IDLE, MAXIMUM) is None  # idle too long
        assert accounts.session(reg.db, "not-a-session", IDLE, MAXIMUM) is None


def _sign_in(c: TestClient, login: str) -> Response:
    form = c.get("/login").text
    csrf = re.search(r'<form method="post" action="/login".*?name="csrf" value="([^"]+)"', form, re.S)
    assert csrf is not None, form
    return c.post("/login", data={"login": login, "password": PASSWORD, "csrf": csrf.group(1)})


def test_what_is_made_for_a_signed_in_person_or_a_token_is_never_kept_by_a_cache(sqlite_service: Service) -> None:
    """Every page made for a signed-in person carries their session's CSRF token (the sign-out form) and what only
    they may read; a vendor's token reads its submissions. None of these answers said Cache-Control: a shared cache (a
    proxy, a CDN) or the browser's disk could keep them and show them to the next person at that URL."""
    s = sqlite_service
    alice, csrf = s.staff("alice")
    for path in ("/", "/registry", "/staff", "/staff/audit", "/waves"):
        r = alice.get(path)
        assert r.status_code == 200 and csrf in r.text, path
        assert r.headers.get("cache-control") == "no-store", (path, r.headers)
    mine = s.vendor().get("/api/v1/submissions")
    assert mine.status_code == 200 and mine.headers.get("cache-control") == "no-store", mine.headers
    assert alice.get("/static/style.css").headers["cache-control"].startswith("public")  # a route's own choice stays
    anonymous = s.client().get("/registry")  # the public's pages may be cached
    assert "no-store" not in anonymous.headers.get("cache-control", ""), anonymous.headers


def test_cookies_over_https_are_host_only_so_a_sibling_host_cannot_plant_one(sqlite_service: Service) -> None:
    """Without the ``__Host-`` prefix a sibling host (``evil.agency.example``) could set a session or sign-in cookie
    for the agency's domain: a browser signed in as the attacker (session fixation), a sign-in CSRF token of theirs.
    A ``__Host-`` cookie is kept only when Secure, Path=/, no Domain: each Set-Cookie says so."""
    c = sqlite_service.client()
    form = c.get("/login")
    signed = _sign_in(c, "alice")
    set_cookies = form.headers.get_list("set-cookie") + signed.headers.get_list("set-cookie")
    named = [h for h in set_cookies if h.split("=", 1)[0] in ("__Host-usine_login_csrf", "__Host-usine_session")]
    assert {h.split("=", 1)[0] for h in named} == {"__Host-usine_login_csrf", "__Host-usine_session"}, set_cookies
    for header in named:
        attributes = [a.strip().lower() for a in header.split(";")[1:]]
        assert "secure" in attributes and "path=/" in attributes, header
        assert not any(a.startswith("domain") for a in attributes), header
    assert not any(h.startswith(("usine_session=", "usine_login_csrf=")) for h in set_cookies)
    planted = sqlite_service.client()
    planted.cookies.set("usine_session", c.cookies.get("__Host-usine_session") or "", domain="testserver")
    assert planted.get("/staff").status_code == 303  # the unprefixed name signs no one in


def test_signing_in_again_in_the_same_browser_ends_the_session_it_had(sqlite_service: Service) -> None:
    """A second sign-in (another person at the same browser, or the same one) replaced the cookie but left the
    first session alive in the registry until it expired: whoever had copied its cookie kept its rights."""
    s = sqlite_service
    c = s.client()
    assert _sign_in(c, "alice").status_code == 303
    first = c.cookies.get("__Host-usine_session")
    assert _sign_in(c, "bob").status_code == 303
    assert c.cookies.get("__Host-usine_session") != first
    assert s.table("SELECT count(*) FROM web_sessions WHERE ended IS NULL") == [(1,)]
    stale = s.client()
    stale.cookies.set("__Host-usine_session", first or "", domain="testserver")
    assert stale.get("/staff").status_code == 303  # the first session no longer signs anyone in


def test_wrong_passwords_sent_from_elsewhere_do_not_lock_a_person_out_of_where_they_sign_in(
        sqlite_service: Service) -> None:
    """Five wrong passwords for a login, sent from anywhere, locked that login for everyone for a quarter of an hour:
    anyone could keep any reviewer or decider out of the agency with five requests every quarter hour (their logins
    are published in the labels they review: "Bob (bob)"). The guesses still lock the login for the address they came
    from and for any address it never signed in from; not for an address it signed in from before."""
    s = sqlite_service

    def at(address: str) -> TestClient:
        return TestClient(s.app, base_url="https://testserver", follow_redirects=False,  # type: ignore[arg-type]
                          client=(address, 50000))

    office, attacker, elsewhere = at("192.0.2.10"), at("203.0.113.9"), at("198.51.100.7")
    assert _sign_in(office, "alice").status_code == 303
    for _ in range(5):
        form = attacker.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        assert attacker.post("/login", data={"login": "alice", "password": "a wrong guess!", "csrf": csrf}
                             ).status_code == 401
    assert _sign_in(attacker, "alice").status_code == 429  # even the right password waits, there
    assert _sign_in(elsewhere, "alice").status_code == 429  # and where alice never signed in from
    assert _sign_in(office, "alice").status_code == 303  # alice, where she signs in, is not locked out
