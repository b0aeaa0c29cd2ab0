"""``usine sandbox serve`` refuses what it cannot serve with before it starts or writes anything: a PostgreSQL role
that may not create the store's tables, a port it cannot listen on, a TLS certificate and key it cannot serve with.
Each is one ``error:`` line naming the input and why, exit 2, never a traceback (a role without CREATE on schema
public, PostgreSQL 15's default, died in ``psycopg.errors.InsufficientPrivilege``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from sandbox.tls import make_test_pki
from tests.helpers import port_in_use


def serve(*args: str, tmp_path: Path, data: bool = True) -> subprocess.CompletedProcess[str]:
    """``data`` False: no --data, the sandbox makes a temporary state folder (in tmp_path/tmp)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": "serve-refusals-test-admin-token-0123456789",
           "TMPDIR": str(tmp_path / "tmp")}
    env.pop("USINE_SANDBOX_DATABASE", None)
    state = ["--data", str(tmp_path / "data")] if data else []
    try:
        return subprocess.run([sys.executable, "-m", "conformity", "sandbox", "serve", *state, *args],
                              capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"usine sandbox serve {' '.join(args)} started instead of refusing")


def refused(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    return done.stderr


def test_a_role_that_may_not_create_the_tables_is_said_with_what_to_grant(postgresql_url: str, tmp_path: Path) -> None:
    with psycopg.connect(postgresql_url, autocommit=True) as conn:  # PostgreSQL 15's public schema for a non-owner
        conn.execute("REVOKE CREATE ON SCHEMA public FROM pg_database_owner, PUBLIC")
    said = refused(serve("--database", postgresql_url, "--port", "0", tmp_path=tmp_path))
    assert "not a usable PostgreSQL sandbox store: permission denied for schema public" in said
    assert "GRANT CREATE, USAGE ON SCHEMA public TO" in said
    assert "CREATE TABLE" not in said  # the server's first line, not the SQL it quotes
    assert ":***@" in said and f":{urlsplit(postgresql_url).password}@" not in said  # the password kept out


def test_a_read_only_server_is_said(postgresql_url: str, tmp_path: Path) -> None:
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    said = refused(serve("--database", postgresql_url, "--port", "0", tmp_path=tmp_path))
    assert "not a usable PostgreSQL sandbox store" in said and "read-only" in said


def test_a_port_in_use_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with port_in_use() as port:
        said = refused(serve("--port", str(port), tmp_path=tmp_path))
    assert f"--port: cannot listen on 127.0.0.1:{port}: address already in use" in said
    assert not (tmp_path / "data").exists()


def test_a_host_that_is_not_this_machines_is_refused(tmp_path: Path) -> None:
    said = refused(serve("--host", "no-such-host.invalid", "--port", "18999", tmp_path=tmp_path))
    assert "--host: cannot listen on 'no-such-host.invalid'" in said


@pytest.mark.parametrize("case", ["garbage", "mismatch", "encrypted"])
def test_a_certificate_and_key_tls_cannot_serve_with_are_named(case: str, tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    cert, key = pki.server_cert, pki.server_key
    if case == "garbage":
        cert = tmp_path / "garbage.pem"
        cert.write_text("not a certificate\n")
    elif case == "mismatch":
        key = pki.ca_key
    else:
        from cryptography.hazmat.primitives import serialization

        loaded = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
        key = tmp_path / "encrypted.key"
        key.write_bytes(loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"secret")))
    said = refused(serve("--port", "0", "--tls-cert", str(cert), "--tls-key", str(key), tmp_path=tmp_path))
    expected = {"garbage": f"cannot serve TLS with {cert} and {key}: not a PEM certificate",
                "mismatch": f"cannot serve TLS with {cert} and {key}: the key is not the certificate's",
                "encrypted": f"{key}: the private key is encrypted"}[case]
    assert expected in said
    assert not (tmp_path / "data").exists()


def test_a_sandbox_that_never_served_leaves_no_temporary_state_folder(tmp_path: Path) -> None:
    """Without --data the state folder is a new temporary one: a start that fails removes it (it held the lock file,
    and the keys created before the failure)."""
    (tmp_path / "a-file").write_text("x")
    said = refused(serve("--port", "0", "--test-pki", str(tmp_path / "a-file" / "pki"), tmp_path=tmp_path, data=False))
    assert "a-file/pki" in said
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_damaged_database_in_the_state_folder_is_said(tmp_path: Path) -> None:
    """It was a traceback ending in ``sqlite3.DatabaseError: file is not a database``."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sandbox.sqlite3").write_bytes(b"not a database, " * 100)
    said = refused(serve("--port", "0", tmp_path=tmp_path))
    assert f"{tmp_path / 'data' / 'sandbox.sqlite3'}: not a usable SQLite sandbox store: file is not a database" \
        in said


@pytest.mark.parametrize("name", ["trace-signing.pem", "idp-signing.json", "idp-signing-rsa.json"])
def test_a_damaged_key_in_the_state_folder_is_said_as_bad_input(name: str, tmp_path: Path) -> None:
    """A damaged trace key was exit 2, a damaged identity provider key exit 1 (IdpKeyError was no InputError)."""
    (tmp_path / "data" / "keys").mkdir(parents=True)
    (tmp_path / "data" / "keys" / name).write_text("garbage\n")
    said = refused(serve("--port", "0", tmp_path=tmp_path))
    assert str(tmp_path / "data" / "keys" / name) in said


@pytest.mark.parametrize(("option", "value", "why"), [
    ("--session-retention", "0", "an hour at least"),
    ("--session-retention", "-5", "an hour at least"),
    ("--session-retention", str(10**20), "400 days at most"),
    ("--session-ttl", "0", "a minute at least"),
    ("--vendor-live-sessions", "0", "0 would refuse every vendor's software everything"),
    ("--vendor-runs-per-hour", "-1", "0 would refuse"),
    ("--vendor-runs-per-day", str(2**64), "0 would refuse"),
    ("--session-recorded-bytes", "0", "1 KiB to 1 TiB"),
    ("--session-recorded-bytes", str(2**63), "1 KiB to 1 TiB"),
    ("--vendor-recorded-bytes", "-1", "1 KiB to 1 PiB"),
    ("--seal-seconds", "nan", "not a number of seconds"),
    ("--seal-seconds", "inf", "--seal-seconds"),
])
def test_a_bound_option_out_of_its_range_is_refused_with_why(option: str, value: str, why: str,
                                                             tmp_path: Path) -> None:
    # --session-retention 0 was served: every session swept as soon as it expired, its trace gone before its harness
    # could export it again, and a request in flight at its expiry written after the sweep deleted it
    done = serve(option, value, "--port", "0", tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"Invalid value for '{option}'" in done.stderr and why in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()  # nothing written
