"""``usine agency serve`` refuses a database it cannot use, a port it cannot listen on and a TLS pair it cannot serve
with before uvicorn starts its workers: one ``error:`` line, exit 2. The registry was opened first in a worker: a
role without CREATE on schema public (PostgreSQL 15's default) printed a traceback under "usine agency service on
…", then uvicorn's "Application startup failed", exit 3 (usine's "ledger busy") with one worker, exit 0 with
--workers 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conformity.signing import SigningKey
from tests.helpers import port_in_use


def serve(*args: str, tmp_path: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    trust = tmp_path / "sandbox.pub.pem"
    trust.write_text(SigningKey.generate().verify_key.pem())
    env = {**os.environ, "HOME": str(tmp_path / "home"), "USINE_HOME": str(tmp_path / "usine-home")}
    env.pop("USINE_REGISTRY", None)
    try:
        return subprocess.run([sys.executable, "-m", "conformity", "agency", "serve", "--trust", str(trust),
                               "--key", str(tmp_path / "agency.pem"), "--data", str(tmp_path / "service"), *args],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"usine agency serve {' '.join(args)} started instead of refusing")


def refused(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Application startup failed" not in done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    return done.stderr


def test_a_role_that_may_not_create_the_registry_is_refused_before_the_workers(postgresql_url: str,
                                                                              tmp_path: Path) -> None:
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM pg_database_owner, PUBLIC")
    said = refused(serve("--database", postgresql_url, "--port", "0", "--workers", "2", tmp_path=tmp_path))
    assert "not a usable PostgreSQL registry: permission denied for schema public" in said
    assert "GRANT CREATE, USAGE ON SCHEMA public TO" in said and "LINE 1" not in said


def test_a_file_that_is_not_a_registry_is_refused_before_the_workers_and_left_as_it_was(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE mine (x)")
    other.chmod(0o644)
    before = other.read_bytes()
    said = refused(serve("--database", str(other), "--port", "0", "--workers", "2", tmp_path=tmp_path))
    assert "this SQLite file is not a usine registry" in said
    assert other.read_bytes() == before, "its journal mode was switched to WAL"
    assert other.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("other")) == ["other.sqlite3"]


def test_a_port_in_use_and_a_bad_tls_pair_are_refused(tmp_path: Path) -> None:
    with port_in_use() as port:
        said = refused(serve("--port", str(port), tmp_path=tmp_path))
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in said
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM\n")
    said = refused(serve("--port", "0", "--tls-cert", str(garbage), "--tls-key", str(garbage), tmp_path=tmp_path))
    assert f"cannot serve TLS with {garbage} and {garbage}" in said


def test_half_a_tls_pair_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """Before, ``--tls-cert`` without ``--tls-key`` (or the other way) announced the service on https:// and then
    stopped with OpenSSL's "[SSL] PEM lib (_ssl.c:3926)", naming neither option."""
    cert = tmp_path / "server.pem"
    cert.write_text("not read\n")
    for given in ("--tls-cert", "--tls-key"):
        said = refused(serve("--port", "0", given, str(cert), tmp_path=tmp_path))
        assert "--tls-cert and --tls-key go together" in said and "PEM lib" not in said, said
        assert "usine agency service on" not in said, said


def test_an_unreachable_witness_sandbox_is_refused_before_the_workers(tmp_path: Path) -> None:
    """Reached in each worker only, it failed every worker's start, and uvicorn started another, for ever."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    said = refused(serve("--port", "0", "--workers", "2", "--database", str(tmp_path / "registry.sqlite3"),
                         "--witness-sandbox", f"http://127.0.0.1:{port}", "--witness-sandbox-token", "x",
                         tmp_path=tmp_path, timeout=45))
    assert f"cannot reach the sandbox at http://127.0.0.1:{port}" in said


def test_a_key_that_cannot_be_loaded_is_refused_before_the_workers(tmp_path: Path) -> None:
    """Loaded in each worker only, it failed every worker's start, and uvicorn started another, for ever."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    said = refused(serve("--port", "0", "--workers", "2", "--database", str(tmp_path / "registry.sqlite3"),
                         "--key", str(garbage), tmp_path=tmp_path, timeout=45))
    assert f"{garbage}: cannot load private key" in said
    assert not (tmp_path / "registry.sqlite3").exists()  # refused before the registry is made


def test_a_data_folder_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    """It started, and failed each upload. Refused before the registry is made (it was made first: a refused start
    left a new registry behind)."""
    (tmp_path / "a-file").write_text("x")
    said = refused(serve("--port", "0", "--database", str(tmp_path / "registry.sqlite3"),
                         "--data", str(tmp_path / "a-file" / "service"), tmp_path=tmp_path, timeout=45))
    assert f"--data: {tmp_path / 'a-file' / 'service'}: cannot write there (Not a directory)" in said
    assert not (tmp_path / "registry.sqlite3").exists()


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    """It started, announcing "usine agency service on http://127.0.0.1:99999/"."""
    done = serve("--port", "99999", tmp_path=tmp_path, timeout=45)
    assert done.returncode == 2 and "99999 is not in the range 0<=x<=65535" in done.stderr, done.stderr


def test_a_vendor_storage_smaller_than_one_bundle_is_refused(tmp_path: Path) -> None:
    said = refused(serve("--port", "0", "--max-upload-mib", "64", "--vendor-storage-mib", "32", tmp_path=tmp_path))
    assert "--vendor-storage-mib" in said and "less than one bundle" in said


def test_witness_options_without_a_witness_sandbox_are_refused(tmp_path: Path) -> None:
    """--witness-driver-ca, --witness-timeout… given without --witness-sandbox were silently ignored: the agency
    believed it had configured witnessed runs and offered none. (The token from the environment is not a choice
    made for this command: left alone.)"""
    ca = tmp_path / "ca.pem"
    ca.write_text("unused")
    done = serve("--witness-driver-ca", str(ca), "--witness-timeout", "120", tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--witness-driver-ca, --witness-timeout" in done.stderr and "--witness-sandbox URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    """A --tls-cert that does not exist was refused as "error: No such file or directory": neither file nor option
    named (OpenSSL's error carries no file name)."""
    from sandbox.tls import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    missing = tmp_path / "no-such-cert.pem"
    said = refused(serve("--tls-cert", str(missing), "--tls-key", str(pki.server_key), "--port", "0",
                         tmp_path=tmp_path))
    assert "--tls-cert" in said and str(missing) in said and "cannot read it" in said, said


@pytest.mark.parametrize("content", [b"", b"not a database at all", b"SQLite format 3\x00" + b"\x01" * 600],
                         ids=["empty", "text", "corrupt"])
def test_a_ledger_that_is_no_payment_ledger_is_refused_before_serving(tmp_path: Path, content: bytes) -> None:
    """An empty file, text or a corrupt SQLite file as --ledger: the service started, and its progress page failed
    on each request."""
    ledger = tmp_path / "ledger.sqlite3"
    ledger.write_bytes(content)
    said = refused(serve("--ledger", str(ledger), "--database", str(tmp_path / "registry.sqlite3"), "--port", "0",
                         tmp_path=tmp_path, timeout=30))
    assert str(ledger) in said and "ledger" in said, said
    assert ledger.read_bytes() == content
