"""What the agency writes loses nothing: a failure half-way through ``usine agency registry export`` leaves the
export a reader saw before (the payment agency pays on ``labels/``), never new labels beside an old revocation list
nor new open data beside old; a decision's pair of files is written whole or not at all."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import conformity.agency.export as export
from conformity.agency.registry import Registry
from conformity.catalog import Catalog
from conformity.labels import verify_revocations
from conformity.signing import KeyRing, verify_document
from tests.agency.helpers import DECIDED, Runs, label_bundle, usine
from tests.agency.service_client import Service, upload
from tests.helpers import small_tmpfs


@pytest.fixture
def registry(runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path, home: Path) -> Path:
    """The default registry of ``home`` with the reference labelled."""
    path = home / "agency" / "registry.sqlite3"
    label_bundle(runs.reference, catalog, trust, path, home / "agency" / "agency-key.pem", tmp_path / "decisions")
    return path


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too: a leftover temporary is a change), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def revoke_the_label(registry: Path) -> None:
    with Registry(registry) as reg:
        label_id = reg.labels()[0][0]["label_id"]
        reg.revoke(label_id, "certificate checks disabled", DECIDED + dt.timedelta(days=1))


def test_an_export_failing_half_way_leaves_the_previous_export_as_it_was(
        registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "export"
    assert usine("agency", "registry", "export", "--out", out).exit_code == 0
    before = tree(out)
    revoke_the_label(registry)  # the next export differs: revocation list and open data
    real = export.write_atomic

    def disk_full_on_the_csv(path: Path, text: str, *, shared: bool = False) -> None:
        if "labelled.csv" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text, shared=shared)

    with monkeypatch.context() as patched:  # (the fixture's own patches, USINE_HOME, are kept)
        patched.setattr(export, "write_atomic", disk_full_on_the_csv)
        failed = usine("agency", "registry", "export", "--out", out)
    assert failed.exit_code != 0
    assert tree(out) == before  # the revocation list and labelled.json of the failed export are not there
    again = usine("agency", "registry", "export", "--out", out)
    assert again.exit_code == 0, again.output
    after = tree(out)
    assert after.keys() == before.keys() and after["labels/revocations.json"] != before["labels/revocations.json"]


def whole(out: Path, label_names: set[str]) -> None:
    """``out`` holds one whole export (or, for the instant of the swap, no ``labels/``): every file whole, and the
    open data no newer than the labels it names (a label it says revoked is revoked by the list beside it)."""
    keys = KeyRing.from_paths([out / "agency-key.pub.pem"])
    data = verify_document(json.loads((out / "labelled.json").read_text()), keys)
    with (out / "labelled.csv").open(newline="") as fh:
        assert {r["label_id"]: r["status"] for r in csv.DictReader(fh)} == {
            e["label_id"]: e["status"] for w in data["waves"] for c in w["categories"] for e in c["labels"]}
    if not (out / "labels").exists():
        return
    assert {p.name for p in (out / "labels").iterdir()} == label_names
    revocations = verify_revocations(json.loads((out / "labels" / "revocations.json").read_text()), keys)
    for w in data["waves"]:
        for c in w["categories"]:
            for e in c["labels"]:
                json.loads((out / e["file"]).read_text())
                if e["status"] == "revoked":
                    assert revocations.revoked_at(e["label_id"])


def test_an_export_killed_at_any_point_leaves_a_whole_export_and_the_next_one_completes(
        registry: Path, tmp_path: Path) -> None:
    """SIGKILL at a seeded random instant of a real ``usine agency registry export`` (its own process): the folder
    then holds a whole export, the old or the new one, and the next export completes."""
    out = tmp_path / "export"
    assert usine("agency", "registry", "export", "--out", out).exit_code == 0
    names = {p.name for p in (out / "labels").iterdir()}
    revoke_the_label(registry)
    rng = random.Random(20261205)
    command = [sys.executable, "-m", "conformity", "agency", "registry", "export", "--out", str(out)]
    for _ in range(4):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.5, 4.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        whole(out, names)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    whole(out, names)
    assert not any(p.name.endswith(".json") and p.name.startswith(".") for p in (out / "labels").iterdir())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        yield disk


def test_an_export_into_a_read_only_folder_says_so_and_changes_nothing(registry: Path, small_disk: Path) -> None:
    out = small_disk / "export"
    assert usine("agency", "registry", "export", "--out", out).exit_code == 0
    before = tree(out)
    revoke_the_label(registry)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused = usine("agency", "registry", "export", "--out", out)
    assert refused.exit_code == 2, refused.output
    assert str(out) in refused.output and "Read-only file system" in refused.output
    assert tree(out) == before


def test_a_refusal_whose_text_cannot_be_written_leaves_neither_file_and_is_written_again(
        runs: Runs, catalog: Catalog, trust: KeyRing, home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal is a pair (the JSON a program reads, the text the vendor reads): before, a full disk on the text
    left the JSON alone. Now neither is written, and deciding the same bundle again writes both."""
    import conformity.agency.submit as submit

    registry, key, out = home / "agency" / "registry.sqlite3", home / "agency" / "agency-key.pem", tmp_path / "out"
    real = submit.write_atomic

    def full_on_the_text(path: Path, text: str, *, shared: bool = False) -> None:
        if ".txt." in path.name or path.name.endswith(".txt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text, shared=shared)

    with monkeypatch.context() as patched:
        patched.setattr(submit, "write_atomic", full_on_the_text)
        with pytest.raises(OSError):
            submit.decide_bundle(runs.defective, catalog, trust, registry, key, out, now=DECIDED)
    assert not out.exists()  # made for the pair, removed with it: nothing left where nothing was written
    again = submit.decide_bundle(runs.defective, catalog, trust, registry, key, out, now=DECIDED)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in again.files) and len(again.files) == 2


def test_a_received_bundle_is_on_disk_before_its_upload_is_recorded(sqlite_service: Service, runs: Runs,
                                                                    fsynced: list[tuple[str, int]]) -> None:
    """The upload is recorded (its SHA-256, "received") in the registry, which fsyncs its commit; the bundle's bytes
    were renamed into place from a file never fsync'd: after a power cut the registry could name an upload whose
    file is empty, the vendor told it was received."""
    with sqlite_service.vendor() as client:
        made = upload(client, runs.reference)
    stored = sqlite_service.config.uploads / f"{made['id']}.zip"
    assert stored.read_bytes() == runs.reference.read_bytes()
    assert ("file", stored.stat().st_ino) in fsynced and ("dir", stored.parent.stat().st_ino) in fsynced


def test_the_agency_key_leaves_no_lock_beside_a_file_that_holds_none(tmp_path: Path) -> None:
    """The key's creation lock (``PATH.lock``) was made before the file was read: a command given a vendor.toml, a
    label or a typo's neighbour as ``--key`` refused it, and left ``vendor.toml.lock`` beside the vendor's file (the
    CLI fuzz net left one in the repository). A file that is there is only read; the lock guards creation only."""
    from conformity.agency.submit import agency_signing_key
    from conformity.errors import InputError

    other = tmp_path / "vendor.toml"
    other.write_text('name = "not a key"\n')
    with pytest.raises(InputError):
        agency_signing_key(other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vendor.toml"]
    made = agency_signing_key(tmp_path / "keys" / "agency.pem")  # created on first use, under its lock
    assert agency_signing_key(tmp_path / "keys" / "agency.pem").kid == made.kid
