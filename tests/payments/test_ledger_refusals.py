"""A ``--ledger`` that is not a usable ledger is refused, and left as it was.

Another program's SQLite database, or a file that is not SQLite: refused, but only after its mode was set to 0600
and (for the database) its journal switched to WAL.

A PostgreSQL URL (the registry and the sandbox take one, the ledger does not): click took it as a relative path,
``postgresql:/USER:PASSWORD@HOST/DB``, and the run paid into a new SQLite ledger in folders named after the URL,
password included, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.payments.builders import events_for, installation
from tests.payments.workspace import Workspace

SITE = installation("750100011", "M")
URL = "postgresql://payer:s3cret@127.0.0.1:5432/ledger"


def test_a_postgresql_url_as_the_ledger_is_refused_and_nothing_is_written(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE, 5))
    r = ws.run(f, extra=("--ledger", URL))
    assert r.returncode == 2, r.stderr
    assert "postgresql://payer:***@127.0.0.1:5432/ledger is a PostgreSQL URL: the payment ledger is a SQLite file" \
        in r.stderr
    assert "s3cret" not in r.stderr and "Traceback" not in r.stderr
    assert not (ws.root / "postgresql:").exists() and not r.out.exists()


@pytest.mark.parametrize("command", [("pay", "status"), ("pay", "lease"), ("agency", "progress", "--wave", "2026-W1")])
def test_every_ledger_option_refuses_a_url(command: tuple[str, ...], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from conformity.cli import cli

    result = CliRunner().invoke(cli, [*command, "--ledger", URL])
    assert result.exit_code == 2, result.output
    assert "is a PostgreSQL URL: the payment ledger is a SQLite file" in result.output
    assert "s3cret" not in result.output


@pytest.mark.parametrize("kind", ["another program's database", "not SQLite"])
def test_a_file_that_is_not_a_ledger_is_refused_and_left_as_it_was(ws: Workspace, kind: str) -> None:
    import sqlite3

    ws.label()
    f = ws.events("e.jsonl", events_for(SITE, 5))
    other = ws.root / "other.db"
    if kind == "not SQLite":
        other.write_bytes(b"not a database, " * 200)
    else:
        with sqlite3.connect(other) as db:
            db.execute("CREATE TABLE mine (x)")
    other.chmod(0o644)
    before = other.read_bytes()
    r = ws.run(f, extra=("--ledger", str(other)))
    assert r.returncode == 2, r.stderr
    said = {"not SQLite": "not a usable SQLite ledger: file is not a database",
            "another program's database": "this SQLite file is not a usine payment ledger"}[kind]
    assert f"{other}: {said}" in r.stderr and "Traceback" not in r.stderr
    assert other.read_bytes() == before and other.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in ws.root.iterdir() if p.name.startswith("other")) == ["other.db"]
    assert not r.out.exists()
