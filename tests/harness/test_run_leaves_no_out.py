"""``usine run`` that cannot be made (the sandbox unreachable) leaves no --out folder of its own making: it left an
empty one; a folder that was there is kept."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conformity.cli import cli
from tests.harness.helpers import vendor_manifest


def _run(out: Path) -> str:
    r = CliRunner().invoke(cli, ["run", "--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")),
                                 "--only", "PRACAUTH-001", "--out", str(out), "--sandbox", "http://127.0.0.1:9",
                                 "--sandbox-token", "t"])
    assert r.exit_code == 2 and "cannot reach the sandbox at http://127.0.0.1:9" in r.output, r.output
    return r.output


def test_an_unreachable_sandbox_leaves_no_out_folder(tmp_path: Path) -> None:
    _run(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_out_folder_that_was_there_is_kept(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    _run(tmp_path / "out")
    assert (tmp_path / "out").is_dir()
