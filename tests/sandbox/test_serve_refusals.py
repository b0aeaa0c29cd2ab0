"""``usine sandbox serve`` refuses a PostgreSQL store it cannot set up: one ``error:`` line naming the database and
why, exit 2, never a traceback (a role without CREATE on schema public, PostgreSQL 15's default, died in
``psycopg.errors.InsufficientPrivilege``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest


def serve(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": "serve-refusals-test-admin-token-0123456789"}
    env.pop("USINE_SANDBOX_DATABASE", None)
    try:
        return subprocess.run([sys.executable, "-m", "conformity", "sandbox", "serve", "--data", str(tmp_path / "data"),
                               *args], capture_output=True, text=True, timeout=60, env=env)
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
