"""The harness's in-process sandbox: its test keys made while it starts, its listeners stopped when it is closed."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from conformity.harness.sandbox_access import start_local


def refuses(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return False
    except OSError:
        return True


def test_the_keys_made_while_the_sandbox_starts_are_those_it_serves_and_keeps(tmp_path: Path) -> None:
    access = start_local(tmp_path)
    try:
        with access.admin() as admin:
            session = admin.post("/admin/sessions", json={"seed": 1}).json()
            jwks = admin.get(session["endpoints"]["idp"] + "/jwks").json()  # its identity provider's keys
    finally:
        access.close()
    stored = json.loads((tmp_path / "keys" / "idp-signing-rsa.json").read_text())
    assert [k["kid"] for k in jwks["keys"]] == [stored["signing"]["kid"]]  # RS256, the default algorithm
    assert access.ca_certificates == [(tmp_path / "pki" / "ca.pem").read_text()]
    again = start_local(tmp_path)  # the same state folder: the same keys, not new ones
    again.close()
    assert json.loads((tmp_path / "keys" / "idp-signing-rsa.json").read_text()) == stored


def test_every_listener_stops_once_the_sandbox_is_closed(tmp_path: Path) -> None:
    access = start_local(tmp_path)
    urls = list(access.listeners().values())
    assert len(urls) > 1 and not any(refuses(u) for u in urls)
    access.close()  # tells them to stop, without waiting for them
    deadline = time.monotonic() + 10
    while not all(refuses(u) for u in urls) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(refuses(u) for u in urls)
