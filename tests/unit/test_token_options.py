"""Every option that takes a bearer token refuses what no Authorization header can carry, as a usage error naming the
option, before anything is read, started or sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity.cli import cli
from conformity.cli.params import BEARER_TOKEN


@pytest.mark.parametrize("token", ["usn_abc-DEF_123", "eyJhbGciOiJFUzI1NiJ9.e30.sig", "dG9rZW4=", "a+b/c~d.e"])
def test_tokens_of_rfc_6750s_form_are_taken(token: str) -> None:
    assert BEARER_TOKEN.convert(token, None, None) == token


@pytest.mark.parametrize("args", [
    ["submit", "{file}", "--agency", "http://127.0.0.1:9", "--token", "{bad}"],
    ["run", "--wave", "2026-W1", "--vendor", "{file}", "--sandbox", "http://127.0.0.1:9", "--sandbox-token", "{bad}"],
    ["sandbox", "harness-token", "--sandbox", "http://127.0.0.1:9", "--admin-token", "{bad}", "--vendor", "{file}"],
    ["sandbox", "serve", "--admin-token", "{bad}"],
    ["agency", "serve", "--witness-sandbox-token", "{bad}"],
], ids=["submit", "run", "harness-token", "sandbox-serve", "agency-serve"])
@pytest.mark.parametrize("bad", ["ééé", "two words", "tab\there", "=leading", "a" * 4097])
def test_a_token_no_header_can_carry_is_a_usage_error(args: list[str], bad: str, tmp_path: Path) -> None:
    """``usine submit --token`` with an accent ended in a UnicodeEncodeError traceback from the HTTP client."""
    file = tmp_path / "bundle.zip"
    file.write_bytes(b"PK")
    result = CliRunner().invoke(cli, [a.format(file=file, bad=bad) for a in args])
    assert result.exit_code == 2, result.output
    assert "is not a bearer token" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
