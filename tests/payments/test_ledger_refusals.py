"""A ``--ledger`` that is not a usable ledger is refused, and left as it was.

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
