"""Outputs another party or a later run reads lose nothing: on an error, a kill, a full disk or a power cut a
reader finds the old file (or set of files) or the new one, never half of one nor a mix."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from conformity.files import atomic_output, folder_set, move_into, output_set, write_atomic
from conformity.segments import Sealer, sidecar_path
from conformity.signing import SigningKey


def test_a_file_put_in_place_has_its_folder_fsynced_after_the_rename(tmp_path: Path,
                                                                    fsynced: list[tuple[str, int]]) -> None:
    """A rename is recorded in the folder: until the folder is fsync'd a power cut may bring back the old file (a
    payment order sent twice, a label missing) although "written" was said."""
    target = tmp_path / "orders.xml"
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert fsynced == [("file", target.stat().st_ino), ("dir", tmp_path.stat().st_ino)]


def test_a_file_moved_into_another_folder_is_durable_before_the_rename_and_its_new_folder_after(
        tmp_path: Path, fsynced: list[tuple[str, int]]) -> None:
    """The agency moves a received upload or a witnessed run's bundle into its uploads folder, then records it: the
    record is fsync'd by its commit, so the file and its new name must be on disk first."""
    (tmp_path / "work").mkdir()
    (tmp_path / "kept").mkdir()
    made = tmp_path / "work" / "bundle.zip"
    made.write_bytes(b"PK")  # written as a library may: without its own fsync
    target = move_into(made, tmp_path / "kept" / "u1.zip")
    assert target.read_bytes() == b"PK" and not made.exists()
    assert fsynced == [("file", target.stat().st_ino), ("dir", target.parent.stat().st_ino)]


def test_a_set_of_outputs_is_durable_before_it_is_in_place_and_its_folder_after(
        tmp_path: Path, fsynced: list[tuple[str, int]]) -> None:
    names = ("report.json", "bundle.zip")
    with output_set(tmp_path, names) as temps:
        temps["report.json"].write_text("{}")  # written as a caller may: without its own fsync
        with atomic_output(temps["bundle.zip"], "wb") as fh:
            fh.write(b"PK")
    inodes = {name: (tmp_path / name).stat().st_ino for name in names}
    assert ("file", inodes["report.json"]) in fsynced and ("file", inodes["bundle.zip"]) in fsynced
    assert fsynced[-1] == ("dir", tmp_path.stat().st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_a_folder_set_makes_each_file_and_folder_durable_once_before_its_swap_and_its_folder_after(
        tmp_path: Path, fsynced: list[tuple[str, int]]) -> None:
    """A registry export writes thousands of labels into the folder it builds: each file written there is not synced
    (nor its folder) one by one, but every file and every folder once, deepest first, before the folder is swapped in;
    then the folder that holds it. A power cut before the swap leaves the old folder; after it, every file whole."""
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "old.json").write_text("old")
    with folder_set(tmp_path / "labels") as folder:
        write_atomic(folder / "label-1.json", "1")
        write_atomic(folder / "label-2.json", "2")
        with atomic_output(folder / "deep" / "revocations.json") as fh:
            fh.write("[]")
        (folder / "written-by-a-library.txt").write_text("not synced by its writer")
    labels = tmp_path / "labels"
    files = {("file", p.stat().st_ino) for p in labels.rglob("*") if p.is_file()}
    assert len(files) == 4 and sorted(p.name for p in labels.iterdir()) == [
        "deep", "label-1.json", "label-2.json", "written-by-a-library.txt"]
    assert sorted(fsynced[:4]) == sorted(files)  # each file once, before any folder
    assert fsynced[4:] == [("dir", (labels / "deep").stat().st_ino), ("dir", labels.stat().st_ino),
                           ("dir", tmp_path.stat().st_ino)]


def test_a_symlink_planted_where_an_output_goes_is_replaced_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "report.json"
    link.symlink_to(elsewhere)
    write_atomic(link, "{}")
    assert not link.is_symlink() and link.read_text() == "{}"
    assert elsewhere.read_text() == "not yours"


def test_a_segment_cut_short_by_a_full_disk_is_not_left_torn_and_the_events_log_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel writes what fits and says how much: a segment appended as half a line, taken as sealed, had the
    next segment glued to it, and the sandbox's events log could then never be resumed ("not a signed segment:
    move both aside")."""
    key = SigningKey.generate()
    events, sidecar = tmp_path / "data-received.jsonl", sidecar_path(tmp_path / "data-received.jsonl")
    lines = [json.dumps({"n": n}).encode() + b"\n" for n in range(4)]
    sealer = Sealer(events, key, every=100)
    events.write_bytes(b"".join(lines[:2]))
    for line in lines[:2]:
        sealer.add(line)
    sealer.seal()
    before = sidecar.read_bytes()
    with events.open("ab") as fh:
        fh.write(b"".join(lines[2:]))
    for line in lines[2:]:
        sealer.add(line)
    real_write, full = os.write, [False]

    def disk_fills(fd: int, data: bytes) -> int:  # as write(2) does: what fits, then ENOSPC
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(".segments"):
            return real_write(fd, data)
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        full[0] = True
        return real_write(fd, bytes(data)[: len(data) // 2])

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError) as raised:
        sealer.seal()
    assert raised.value.errno == errno.ENOSPC
    assert sidecar.read_bytes() == before  # no torn line left behind
    monkeypatch.undo()  # room again: the same sealer seals the same lines, and a later process resumes
    assert sealer.seal() is not None
    resumed = Sealer(events, key, every=100)
    assert (resumed.segments, resumed.unsealed) == (2, 0)


def test_a_key_pair_stopped_half_way_is_made_whole_by_the_next_start(tmp_path: Path) -> None:
    """``load_or_create`` keeps a private key once it exists: a process killed after writing it but before its
    public key (or with the public key half-written by a full disk) left the sandbox's trace or infrastructure key
    without the public half verifiers are given, for ever. The public key is now written first, and one missing or
    torn beside an existing private key is written again from it."""
    private = tmp_path / "keys" / "trace-signing.pem"
    public = tmp_path / "keys" / "trace-signing.pub.pem"
    key = SigningKey.generate()
    key.save(private)
    public.unlink()  # killed between the two writes (as an earlier version wrote them: private first)
    assert SigningKey.load_or_create(private).kid == key.kid
    assert public.read_text() == key.verify_key.pem()
    public.write_text(key.verify_key.pem()[:40])  # torn by a full disk
    SigningKey.load_or_create(private)
    assert public.read_text() == key.verify_key.pem()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and stat.S_IMODE(public.stat().st_mode) & 0o044



def test_a_driver_kit_that_cannot_be_written_whole_writes_none_of_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, ``usine driver init`` wrote the kit file by file: a full disk on vendor.toml left the driver alone,
    and the rerun was refused ("already exist(s)... --force overwrites") for a kit never made."""
    import conformity.driverkit as driverkit

    real = driverkit.write_atomic

    def full_on_vendor_toml(path: Path, text: str, *, shared: bool = False) -> None:
        if "vendor.toml" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text, shared=shared)

    kit = tmp_path / "driver"
    with monkeypatch.context() as patched:
        patched.setattr(driverkit, "write_atomic", full_on_vendor_toml)
        with pytest.raises(OSError):
            driverkit.write_skeleton(kit, driverkit.skeleton("python", [], "GP"))
    assert not kit.exists() or list(kit.iterdir()) == []
    written = driverkit.write_skeleton(kit, driverkit.skeleton("python", [], "GP"))
    assert sorted(p.name for p in kit.iterdir()) == sorted(p.name for p in written) and len(written) == 3
