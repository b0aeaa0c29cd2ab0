"""A file written atomically that cannot be written is named as the user gave it, never by its temporary name
(``usine wave show -o ro/spec.md`` said ``error: /…/ro/.spec.md.pd4boa6q: Permission denied``)."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity.cli import cli
from conformity.files import write_atomic


def test_a_folder_where_the_file_should_be_is_named_as_given_and_no_temporary_is_left(tmp_path: Path) -> None:
    target = tmp_path / "spec.md"
    target.mkdir()
    with pytest.raises(OSError) as raised:
        write_atomic(target, "x")
    assert raised.value.filename == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["spec.md"]


def test_a_file_on_the_way_is_said_of_the_file_asked_for_and_named(tmp_path: Path) -> None:
    """Before, a path under a regular file said ``error: …/plain: File exists``: the folder above, and mkdir's
    words."""
    (tmp_path / "plain").write_text("kept")
    with pytest.raises(OSError) as raised:
        write_atomic(tmp_path / "plain" / "spec.md", "x")
    assert raised.value.filename == str(tmp_path / "plain" / "spec.md")
    assert raised.value.strerror == f"{tmp_path / 'plain'} is a file, not a folder"
    assert (tmp_path / "plain").read_text() == "kept"


def test_a_folder_that_cannot_be_written_is_said_of_the_file_asked_for(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(prefix: str, dir: Path) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / f"{prefix}k2j3h4"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    result = CliRunner().invoke(cli, ["wave", "show", "2026-W1", "-c", "GP", "-o", str(tmp_path / "spec.md")])
    assert result.exit_code == 2, result.output
    assert f"error: {tmp_path / 'spec.md'}: Permission denied" in result.output
    assert ".spec.md." not in result.output


def test_driver_init_names_its_folder_argument_not_an_option_it_has_not(tmp_path: Path) -> None:
    """Before, ``usine driver init plain/drv`` (a file on the way) said ``error: --out: …``: driver init has no
    --out."""
    (tmp_path / "plain").write_text("kept")
    result = CliRunner().invoke(cli, ["driver", "init", str(tmp_path / "plain" / "drv"), "--lang", "python"])
    assert result.exit_code == 2, result.output
    assert f"error: FOLDER: {tmp_path / 'plain' / 'drv'}: cannot write there" in result.output, result.output
    assert "--out" not in result.output and (tmp_path / "plain").read_text() == "kept"
