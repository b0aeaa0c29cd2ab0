"""Secrets at rest (issue 9, attack 6): the sandbox keeps no issued secret in clear, its state is private."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import httpx

from conformity.signing import unverified_payload
from sandbox.config import SandboxConfig
from sandbox.credentials import secret_hash
from sandbox.server import start_in_thread
from sandbox.store import Store
from tests.sandbox.test_idp import login

ADMIN = "admin-token-for-secrets-test"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _state_bytes(data: Path) -> bytes:
    """Everything the sandbox wrote to disk (database, WAL, keys, events)."""
    return b"".join(p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file())


def test_no_issued_secret_is_stored_in_clear_and_state_is_private(tmp_path: Path) -> None:
    data = tmp_path / "state"
    old = os.umask(0o022)  # a permissive umask: the modes must not depend on it
    try:
        with start_in_thread(SandboxConfig(data_dir=data, admin_token=ADMIN)) as running:
            with httpx.Client(base_url=running.base_url, timeout=30) as http:
                admin = {"Authorization": f"Bearer {ADMIN}"}
                harness = http.post("/admin/harness-tokens", headers=admin,
                                    json={"vendor_id": "acme", "software_id": "acme.ehr", "days": 1}).json()["token"]
                s = http.post("/admin/sessions", headers={"Authorization": f"Bearer {harness}"},
                              json={"seed": 4}).json()
                creds = s["credentials"]
                token = http.post(s["endpoints"]["idp"] + "/token", auth=(creds["client_id"], creds["client_secret"]),
                                  data={"grant_type": "authorization_code", "code": "x" * 43, "redirect_uri": "x"})
                assert token.status_code == 400  # the client authenticated (the code is what is wrong)
                later = http.get(f"/admin/sessions/{s['session_id']}", headers=admin).json()["credentials"]
                trace = unverified_payload(http.get(s["endpoints"]["trace"],
                                                    headers={"Authorization": f"Bearer {creds['session_token']}"}).json())
    finally:
        os.umask(old)
    secrets = {"harness token": harness, "client secret": creds["client_secret"],
               "session token": creds["session_token"]}
    stored = _state_bytes(data)
    for name, secret in secrets.items():
        assert secret.encode() not in stored, f"the {name} is stored in clear"
    assert later["client_secret_prefix"] == creds["client_secret"][:6] + "…" and "client_secret" not in later
    assert creds["client_secret"] not in json.dumps(trace)
    assert _mode(data) == 0o700 and _mode(data / "keys") == 0o700
    for name in ("sandbox.sqlite3", "keys/trace-signing.pem", "keys/idp-signing.json"):
        assert _mode(data / name) == 0o600, name
    for wal in data.glob("sandbox.sqlite3-*"):
        assert _mode(wal) == 0o600, wal.name


def test_a_version_1_database_is_migrated_to_hashes(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, data TEXT NOT NULL);
        CREATE TABLE tokens (token TEXT PRIMARY KEY, kind TEXT NOT NULL, scope TEXT NOT NULL,
            expires REAL NOT NULL, data TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');""")
    secret, session_token, code, access = "c" * 32, "s" * 43, "k" * 43, "a" * 43
    db.execute("INSERT INTO sessions VALUES ('ses_1', 0, ?)",
               (json.dumps({"id": "ses_1", "client_secret": secret, "session_token": session_token}),))
    db.execute("INSERT INTO tokens VALUES (?, 'code-used', 'ses_1', 9e9, ?)", (code, json.dumps({"access_token": access})))
    db.execute("INSERT INTO tokens VALUES (?, 'access', 'ses_1', 9e9, '{}')", (access,))
    db.commit()
    db.close()
    store = Store(path)
    try:
        session = store.get_session("ses_1")
        assert session is not None and session["client_secret_sha256"] == secret_hash(secret)
        assert "client_secret" not in session and "session_token" not in session
        used = store.get_token(code)
        assert used is not None and used["access_token_sha256"] == secret_hash(access)
        assert store.get_token(access) is not None and store.known_hashes([secret_hash(access)])
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for s in (secret, session_token, access):
        assert s.encode() not in raw


def test_tokens_of_a_real_login_refresh_and_use_are_not_stored_in_clear(tmp_path: Path) -> None:
    """Issue 9, attack 6: the access, refresh and ID tokens and the code of a real OIDC login (Authlib), a refresh
    and a userinfo call are nowhere on disk in clear — not in the store, not in the recorded trace."""
    data = tmp_path / "state"
    with start_in_thread(SandboxConfig(data_dir=data, admin_token=ADMIN)) as running:
        with httpx.Client(base_url=running.base_url, timeout=30) as http:
            session = http.post("/admin/sessions", headers={"Authorization": f"Bearer {ADMIN}"}, json={"seed": 5}).json()
            auth, token = login(session)
            idp = session["endpoints"]["idp"]
            refreshed = dict(auth.client.refresh_token(f"{idp}/token", refresh_token=token["refresh_token"]))
            assert refreshed["access_token"] != token["access_token"]
            for access in (token["access_token"], refreshed["access_token"]):
                r = http.get(f"{idp}/userinfo", headers={"Authorization": f"Bearer {access}"})
                assert r.status_code == 200, r.text
            trace = http.get(session["endpoints"]["trace"],
                             headers={"Authorization": f"Bearer {session['credentials']['session_token']}"}).json()
    outcomes = [e.get("outcome") for e in unverified_payload(trace)["exchanges"]]
    assert "token-issued" in outcomes and "token-refreshed" in outcomes  # the flow really happened and was recorded
    secrets = {"authorization code": auth.code, "access token": token["access_token"],
               "refresh token": token["refresh_token"], "ID token": token["id_token"],
               "refreshed access token": refreshed["access_token"]}
    stored = _state_bytes(data)
    for name, secret in secrets.items():
        assert len(secret) >= 20 and secret.encode() not in stored, f"the {name} is stored in clear"
    for name in ("access token", "refresh token", "refreshed access token"):  # the records are on disk, as hashes
        assert secret_hash(secrets[name]).encode() in stored, name
