"""conformity.files: nothing half-written, secrets private from the first byte, reads bounded."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conformity.errors import InputError
from conformity.files import (
    STALE_TEMPORARY,
    atomic_output,
    create_private,
    folder_set,
    output_set,
    private_dir,
    read_bounded,
    write_atomic,
    write_private,
)


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


def _aged(path: Path, seconds: float, data: str = "half") -> Path:
    """A file last modified ``seconds`` ago (what a write killed then left)."""
    path.write_text(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def _write_report(folder: Path) -> None:
    write_atomic(folder / "report.json", "{}")


def _write_report_in_a_set(folder: Path) -> None:
    with output_set(folder, ["report.json"]) as temps:
        temps["report.json"].write_text("{}")


@pytest.mark.parametrize("write", [_write_report, _write_report_in_a_set], ids=["atomic_output", "output_set"])
def test_a_temporary_file_a_killed_write_left_is_swept_by_the_next_write_of_that_file(
        tmp_path: Path, write: Callable[[Path], None]) -> None:
    """A write killed (SIGKILL, a power cut) between its temporary file and its rename left ``.NAME.XXXXXXXX``
    beside the output for ever. The next write of that output removes those older than ``STALE_TEMPORARY``; a
    younger one may be a live writer's, and nothing else is touched (another output's, another name's, a folder, a
    link)."""
    stale = STALE_TEMPORARY.total_seconds()
    killed = _aged(tmp_path / ".report.json.k1ll3d_0", stale + 60)
    live = _aged(tmp_path / ".report.json.l1ve0000", stale - 60)
    kept = [live,
            _aged(tmp_path / ".other.json.k1ll3d_0", stale + 60),  # another output's: swept when it is written
            _aged(tmp_path / ".report.json.backup", stale + 60),  # not a temporary name of ours
            _aged(tmp_path / "report.json.k1ll3d_0", stale + 60)]  # not hidden: not ours
    (tmp_path / ".report.json.f0ld3r00").mkdir()
    (tmp_path / ".report.json.l1nk0000").symlink_to(killed)
    os.utime(tmp_path / ".report.json.l1nk0000", (time.time() - 2 * stale,) * 2, follow_symlinks=False)
    write(tmp_path)
    assert (tmp_path / "report.json").read_text() == "{}"
    assert not killed.exists()
    assert all(p.is_file() for p in kept)
    assert (tmp_path / ".report.json.f0ld3r00").is_dir() and (tmp_path / ".report.json.l1nk0000").is_symlink()


def _aged_folder(path: Path, seconds: float) -> Path:
    """A folder holding a file, neither modified for ``seconds`` (what a ``folder_set`` killed then left)."""
    path.mkdir()
    _aged(path / "label-0.json", seconds)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_folders_a_killed_folder_set_left_are_swept_once_the_next_is_in_place(tmp_path: Path) -> None:
    """A ``folder_set`` killed between its steps left ``.NAME.new-XXXXXXXX`` (the folder being built) or
    ``.NAME.old-XXXXXXXXXXXX`` (the one replaced) beside NAME for ever, a registry export's labels each time. The
    next one removes those in which nothing was modified for ``STALE_TEMPORARY``; a younger one may be a live
    writer's, and links (and what they lead to), files and other names are never touched."""
    stale = STALE_TEMPORARY.total_seconds()
    outside = _aged_folder(tmp_path / "elsewhere", stale + 60)
    killed = [_aged_folder(tmp_path / ".labels.new-k1ll3d_0", stale + 60),
              _aged_folder(tmp_path / ".labels.old-0123456789ab", stale + 60)]
    (killed[0] / "link").symlink_to(outside)  # removed, not followed
    for made in (killed[0] / "link", killed[0]):
        os.utime(made, (time.time() - stale - 60,) * 2, follow_symlinks=False)
    filling = _aged_folder(tmp_path / ".labels.new-f1ll1ng0", stale + 60)
    (filling / "deep").mkdir()
    os.utime(filling, (time.time() - stale - 60,) * 2)
    kept = [_aged_folder(tmp_path / ".labels.new-l1ve0000", stale - 60),  # a live writer's
            filling,  # old itself, but a live writer fills it deep down
            _aged_folder(tmp_path / ".other.new-k1ll3d_0", stale + 60),  # another folder's
            _aged_folder(tmp_path / ".labels.new-k1ll3d_0_", stale + 60),  # not mkdtemp's tail
            _aged_folder(tmp_path / ".labels.old-0123456789ag", stale + 60),  # not token_hex(6)'s
            _aged_folder(tmp_path / "labels.old-0123456789ab", stale + 60)]  # not hidden: not ours
    link = tmp_path / ".labels.old-aaaaaaaaaaaa"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 2 * stale,) * 2, follow_symlinks=False)
    file = _aged(tmp_path / ".labels.new-f1le0000", stale + 60)
    with folder_set(tmp_path / "labels") as folder:
        (folder / "label-1.json").write_text("{}")
    assert [p.name for p in (tmp_path / "labels").iterdir()] == ["label-1.json"]
    assert not any(p.exists() or p.is_symlink() for p in killed)
    assert all((p / "label-0.json").is_file() for p in kept) and (filling / "deep").is_dir()
    assert link.is_symlink() and (outside / "label-0.json").is_file() and file.is_file()


def test_no_sweep_reads_a_folder_built_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder ``folder_set`` builds is new and empty: its files (a registry export's thousands of labels) are not
    each followed by a listing of the folder that grows with them."""
    listed: list[str] = []
    scandir = os.scandir

    def counting(path: str | os.PathLike[str] = ".") -> object:
        listed.append(os.fspath(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", counting)
    with folder_set(tmp_path / "labels") as folder:
        for n in range(10):
            write_atomic(folder / f"label-{n}.json", "{}")
    assert len([p for p in listed if ".labels.new-" in p]) < 10, listed  # folder_set's own walk, not one a file
    listed.clear()
    write_atomic(tmp_path / "labels" / "label-0.json", "{}")  # a write into a folder in place sweeps it
    assert listed == [str(tmp_path / "labels")], listed
