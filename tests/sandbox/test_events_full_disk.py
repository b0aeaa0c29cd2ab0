"""The sandbox's events log on a full disk: an append that fails leaves no part of its line behind, so the next
append (once there is room) is a line of its own and the signed segments cover exactly the file's bytes."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity.segments import Sealer
from conformity.signing import SigningKey
from sandbox.events import EventLog
from tests.helpers import small_tmpfs

SOURCE = "urn:usine:sandbox:test"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        yield disk


def event(n: int) -> dict[str, object]:
    return {"source": SOURCE, "time": "2026-12-05T10:00:00Z", "id": f"evt-{n}", "data": "x" * 700}


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; the file that does (remove it to make room again)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_an_event_cut_short_by_a_full_disk_leaves_no_part_of_its_line(small_disk: Path) -> None:
    key = SigningKey.generate()
    path = small_disk / "data-received.jsonl"
    log = EventLog(path, key, [SOURCE], seal_every=1000)
    log.append(event(0))
    filler = fill(small_disk)
    written = 1
    with pytest.raises(OSError) as raised:
        for n in range(1, 100):  # until the last page of the file is full
            log.append(event(n))
            written += 1
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes().endswith(b"\n")  # the failed line is not there, not even in part
    filler.unlink()
    log.append(event(1000))
    log.seal()
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"evt-{n}" for n in range(written)] + ["evt-1000"]
    resumed = Sealer(path, key, every=1000)
    assert (resumed.segments, resumed.unsealed) == (1, 0)


def test_the_parquet_export_is_durable_before_it_replaces_the_previous_one(tmp_path: Path,
                                                                         fsynced: list[tuple[str, int]]) -> None:
    """The Parquet file is written by the Parquet library, which does not fsync: renamed over the previous export
    at once, a power cut could leave an empty file under the name (beside a sidecar that seals its bytes)."""
    key = SigningKey.generate()
    log = EventLog(tmp_path / "events" / "data-received.jsonl", key, [SOURCE], seal_every=1000)
    for n in range(3):
        log.append(event(n))
    fsynced.clear()
    done = log.export_parquet()
    target = Path(done["file"])
    assert ("file", target.stat().st_ino) in fsynced  # the file, before its rename
    assert fsynced[-1] == ("dir", target.parent.stat().st_ino)  # then the folder holding both renames
