"""conformity.files: nothing half-written, secrets private from the first byte, reads bounded."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from conformity.errors import InputError
from conformity.files import atomic_output, create_private, private_dir, read_bounded, write_atomic, write_private


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    write_atomic(target, "old")
    write_atomic(target, "new, longer text")
    assert target.read_text() == "new, longer text"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_a_failure_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "ledger.csv"
    write_atomic(target, "kept")
    with pytest.raises(RuntimeError), atomic_output(target) as fh:
        fh.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == ["ledger.csv"]


def test_secrets_are_private_from_creation(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "a" / "signing.pem"
    write_private(key, b"secret")
    assert key.read_bytes() == b"secret"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700 == stat.S_IMODE((tmp_path / "keys").stat().st_mode)
    db = create_private(tmp_path / "keys" / "store.sqlite3")
    assert db.read_bytes() == b"" and stat.S_IMODE(db.stat().st_mode) == 0o600
    db.write_bytes(b"data")
    assert create_private(db).read_bytes() == b"data"  # an existing file is left as it is
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    assert stat.S_IMODE(private_dir(shared).stat().st_mode) == 0o755


def test_reads_are_bounded_and_name_the_file(tmp_path: Path) -> None:
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"x" * 10)
    assert read_bounded(f, 10) == b"x" * 10
    with pytest.raises(InputError, match="larger than 9 bytes") as e:
        read_bounded(f, 9)
    assert e.value.problems[0].file == str(f)
    with pytest.raises(InputError, match="cannot read"):
        read_bounded(tmp_path / "missing", 10)
