"""What counts against a vendor's storage: its bundles the agency keeps for it — not the earlier ones of a software and
wave once a later one is labelled (deleted by the sweep; the registry keeps their runs), and witnessed runs' too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.agency.registry import Registry, iso
from conformity.agency.service import uploads
from conformity.agency.service.config import WitnessConfig
from conformity.agency.service.uploads import Bundle, released
from conformity.files import private_dir
from tests.agency.service_client import Service

CUTOFF = "2026-03-01T00:00:00Z"
VENDOR = "usine-reference"


def _bundle(ident: str, state: str = "verified", sub: str | None = "labelled", received: str = "2026-04-01T00:00:00Z",
            software: str = "app", wave: str = "2026-W1", vendor: str = VENDOR) -> Bundle:
    return Bundle(ident, vendor, state, 10, received, received, sub, received if sub in ("labelled", "refused")
                  else None, software if sub else None, wave if sub else None)


def test_what_is_released_and_what_is_kept() -> None:
    bundles = [
        _bundle("old-labelled", received="2026-04-01T00:00:00Z"),
        _bundle("old-pending", sub="pending", received="2026-04-02T00:00:00Z"),
        _bundle("new-labelled", received="2026-04-03T00:00:00Z"),
        _bundle("newer-pending", sub="pending", received="2026-04-04T00:00:00Z"),  # after the label: kept
        _bundle("other-wave", wave="2026-W2", received="2026-04-01T00:00:00Z"),
        _bundle("other-software", software="tool", received="2026-04-01T00:00:00Z"),
        _bundle("other-vendor", vendor="acme", received="2026-04-01T00:00:00Z"),
        _bundle("in-flight", state="verifying", sub=None, received="2020-01-01T00:00:00Z"),
        _bundle("refused-long-ago", state="refused", sub=None, received="2026-01-01T00:00:00Z"),
        _bundle("refused-lately", state="refused", sub=None, received="2026-04-01T00:00:00Z"),
        _bundle("decided-refused-long-ago", sub="refused", received="2026-01-01T00:00:00Z"),
        _bundle("decided-refused-lately", sub="refused", received="2026-04-01T00:00:00Z"),
        _bundle("not-recorded-long-ago", sub=None, received="2026-01-01T00:00:00Z"),
    ]
    assert released(bundles, CUTOFF) == {"old-labelled", "old-pending", "refused-long-ago", "decided-refused-long-ago",
                                         "not-recorded-long-ago"}


_times = st.integers(0, 20).map(lambda d: iso(dt.datetime(2026, 2, 20, tzinfo=dt.UTC) + dt.timedelta(days=d)))
_bundles = st.lists(st.builds(_bundle, st.uuids().map(str), st.sampled_from(["received", "verifying", "verified",
                                                                              "refused"]),
                              st.sampled_from([None, "pending", "labelled", "refused"]), _times,
                              st.sampled_from(["app", "tool"]), st.sampled_from(["W1", "W2"]),
                              st.sampled_from(["a", "b"])), max_size=12)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(_bundles)
def test_the_latest_labelled_bundle_of_a_software_and_wave_and_unfinished_ones_are_never_released(
        bundles: list[Bundle]) -> None:
    gone = released(bundles, CUTOFF)
    for b in bundles:
        if b.state in ("received", "verifying"):
            assert b.id not in gone
    labelled = [b for b in bundles if b.state == "verified" and b.submission_state == "labelled"]
    for b in labelled:
        later = [o for o in labelled if (o.vendor_id, o.software_id, o.wave) == (b.vendor_id, b.software_id, b.wave)
                 and (o.received, o.id) > (b.received, b.id)]
        assert (b.id in gone) == bool(later)


def _submission(reg: Registry, ident: str, state: str, received: str) -> None:
    reg.db.execute("INSERT INTO submissions (id, bundle_sha256, bundle_name, vendor_id, vendor_name, software_id, "
                   "software_name, version, wave, category, state, received) VALUES (?, ?, 'b.zip', ?, 'Ref', "
                   "'usine-reference/app', 'App', '1.0.0', '2026-W1', 'HOSPITAL', ?, ?)",
                   (ident, ident * 4, VENDOR, state, received))


def _upload(s: Service, reg: Registry, ident: str, kind: str, submission: str | None, received: str,
            size: int | None) -> None:
    account = reg.db.execute("SELECT id FROM accounts WHERE login = 'ref'").fetchone()[0]
    reg.db.execute("INSERT INTO uploads (id, account, vendor_id, kind, state, file_name, bytes, received, updated, "
                   "submission) VALUES (?, ?, ?, ?, 'verified', 'b.zip', ?, ?, ?, ?)",
                   (ident, account, VENDOR, kind, size, received, received, submission))
    (s.config.uploads / f"{ident}.zip").write_bytes(b"PK\x03\x04")


def test_an_earlier_bundle_stops_counting_and_is_deleted_once_a_later_one_is_labelled(service: Service) -> None:
    """Every verified bundle counted for ever (2 GiB: 32 bundles of 64 MB, then 413 for good), witnessed runs' never
    (their size was not recorded). Now an upload superseded by a later labelled one of the same software and wave is
    released (and deleted by the sweep; its submission stays in the registry); a witnessed run's counts."""
    s = service
    s.config.uploads.mkdir(parents=True, exist_ok=True)
    with Registry(s.config.database) as reg:
        with reg.write():
            _submission(reg, "sub_first", "labelled", "2026-04-01T00:00:00Z")
            _submission(reg, "sub_second", "pending", "2026-04-02T00:00:00Z")
            _upload(s, reg, "upl_first", "upload", "sub_first", "2026-04-01T00:00:00Z", 1000)
            _upload(s, reg, "upl_second", "witnessed", "sub_second", "2026-04-02T00:00:00Z", 300)
        assert uploads.kept_bytes(s.config, VENDOR, reg.db) == 1300  # the second awaits review: both kept
        assert uploads.purge_released(s.config) == []
        with reg.write():
            reg.db.execute("UPDATE submissions SET state = 'labelled', decided = ? WHERE id = 'sub_second'",
                           ("2026-04-03T00:00:00Z",))
        assert uploads.kept_bytes(s.config, VENDOR, reg.db) == 300
    assert uploads.purge_released(s.config) == ["upl_first"]
    assert sorted(p.name for p in s.config.uploads.glob("*.zip")) == ["upl_second.zip"]
    assert s.table("SELECT count(*) FROM submissions") == [(2,)]  # the registry keeps both runs
    assert "upl_first" in str(s.table("SELECT detail FROM audit WHERE action = 'uploads-purged'"))


def test_the_sweep_reads_only_the_bundles_it_may_purge(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sweep (each worker's, every third of the verification lease) read every upload row ever received, its
    bundle deleted long ago or not yet due: a read growing with the agency's history. Now it reads the rows whose
    bundle it has not deleted yet and may have to (refused ones past the cutoff, verified ones), by an index: a row
    whose bundle it deleted, or refused too lately, is not read again; the due ones are still deleted."""
    s = service
    s.config.uploads.mkdir(parents=True, exist_ok=True)
    long_ago = iso(dt.datetime.now(dt.UTC) - s.config.refused_kept - dt.timedelta(days=1))
    lately = iso(dt.datetime.now(dt.UTC))
    with Registry(s.config.database) as reg, reg.write():
        for n in range(6):
            _upload(s, reg, f"upl_old{n}", "upload", None, long_ago, 10)
        for n in range(3):
            _upload(s, reg, f"upl_new{n}", "upload", None, lately, 10)
        reg.db.execute("UPDATE uploads SET state = 'refused'")
        _submission(reg, "sub_kept", "labelled", lately)
        _upload(s, reg, "upl_kept", "upload", "sub_kept", lately, 10)  # the latest labelled: kept
    read: list[str] = []
    counted = uploads.Bundle

    def counting(*row: object) -> Bundle:
        read.append(str(row[0]))
        return counted(*row)  # type: ignore[arg-type]

    monkeypatch.setattr(uploads, "Bundle", counting)
    assert uploads.purge_released(s.config) == [f"upl_old{n}" for n in range(6)]
    assert sorted(read) == ["upl_kept", *(f"upl_old{n}" for n in range(6))]  # not the three refused lately
    read.clear()
    assert uploads.purge_released(s.config) == []
    assert read == ["upl_kept"]  # the six deleted are not read again
    assert sorted(p.name for p in s.config.uploads.glob("*.zip")) == ["upl_kept.zip", "upl_new0.zip", "upl_new1.zip",
                                                                       "upl_new2.zip"]
    with Registry(s.config.database) as reg:  # what a vendor is shown of its storage is unchanged
        assert uploads.kept_bytes(s.config, VENDOR, reg.db) == 40


def test_the_sweep_marks_every_bundle_it_deleted_a_query_s_parameters_at_a_time(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows of the bundles deleted are marked in chunks of ``_ROWS_READ`` ids (as the evidence sweep reads them),
    not in one query of every id: a purge of tens of thousands of bundles stays under the database's parameter limit.
    Every row is marked, whichever chunk holds it: none is read again by the next sweep."""
    s = service
    s.config.uploads.mkdir(parents=True, exist_ok=True)
    long_ago = iso(dt.datetime.now(dt.UTC) - s.config.refused_kept - dt.timedelta(days=1))
    with Registry(s.config.database) as reg, reg.write():
        for n in range(7):
            _upload(s, reg, f"upl_old{n}", "upload", None, long_ago, 10)
        reg.db.execute("UPDATE uploads SET state = 'refused'")
    monkeypatch.setattr(uploads, "_ROWS_READ", 3)
    chunked, chunks = uploads._chunks, list[list[str]]()

    def recording(items: list[str]) -> Iterator[list[str]]:
        for chunk in chunked(items):
            chunks.append(chunk)
            yield chunk

    monkeypatch.setattr(uploads, "_chunks", recording)
    assert uploads.purge_released(s.config) == [f"upl_old{n}" for n in range(7)]
    assert sorted(i for chunk in chunks for i in chunk) == [f"upl_old{n}" for n in range(7)]
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert s.table("SELECT count(*) FROM uploads WHERE purged IS NULL") == [(0,)]
    assert uploads.purge_released(s.config) == []


def _left(path: Path, seconds_ago: float, *, folder: bool = False) -> Path:
    """What a killed worker left ``seconds_ago``: a body received part-way, or a work folder holding a run's bundle."""
    if folder:
        path.mkdir()
        _left(path / "bundle.zip", seconds_ago)
    else:
        path.write_bytes(b"PK\x03\x04 part of a body")
    os.utime(path, (time.time() - seconds_ago,) * 2)
    return path


def test_the_sweep_removes_what_killed_workers_left_in_the_uploads_folder(sqlite_service: Service,
                                                                          tmp_path: Path) -> None:
    """A worker killed while it received a body left its ``.incoming-*`` file (up to the largest bundle), one killed
    during a witnessed run its ``witness-*`` work folder, in the uploads folder for ever: nothing removed them. Now
    every sweep removes those untouched for ``leftovers_age`` (six hours; twice a witnessed run's time bound if more:
    a live run's folder is written only as it ends), never a younger one, a link, nor another name."""
    s = sqlite_service
    folder = private_dir(s.config.uploads)
    old, young = uploads.LEFTOVERS_KEPT.total_seconds() + 60, uploads.LEFTOVERS_KEPT.total_seconds() - 60
    outside = _left(tmp_path / "elsewhere", 2 * old, folder=True)
    killed = [_left(folder / f".incoming-{'a' * 24}", old),
              _left(folder / f"witness-upl_{'c' * 20}-k1ll3d_0", old, folder=True)]
    kept = [_left(folder / f".incoming-{'b' * 24}", young),  # a body still streaming
            _left(folder / f"witness-upl_{'d' * 20}-runn1ng0", young, folder=True),  # a run going on
            _left(folder / f"upl_{'e' * 20}.zip", old),  # an upload's bundle
            _left(folder / ".incoming-kept", old),  # not receive's name
            _left(folder / f"witness-upl_{'f' * 20}-0", old, folder=True)]  # not mkdtemp's
    link = folder / f"witness-upl_{'9' * 20}-l1nk0000"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 2 * old,) * 2, follow_symlinks=False)
    uploads.Sweeper(s.config).sweep()
    assert not any(p.exists() for p in killed)
    assert all(p.exists() for p in kept) and link.is_symlink() and (outside / "bundle.zip").is_file()
    slow = dataclasses.replace(s.config, witness=WitnessConfig(sandbox=None, timeout=86400))  # type: ignore[arg-type]
    assert uploads.leftovers_age(slow) == dt.timedelta(days=2)
    day_old = _left(folder / f"witness-upl_{'a' * 20}-l0ngrun0", 86400, folder=True)  # a day-long run going on
    assert uploads.sweep_leftovers(slow) == [] and day_old.is_dir()
    assert uploads.sweep_leftovers(s.config) == [day_old]


def _evidence(folder: Path, name: str, seconds_ago: float) -> Path:
    """A witnessed request's evidence folder (``ID.evidence/REQ/name``, named ``name``) stored ``seconds_ago``."""
    kept = folder / name
    (kept / "SECURITY-013").mkdir(parents=True)
    for path in (kept / "SECURITY-013" / "audit.pdf", kept / "SECURITY-013", kept):
        if not path.exists():
            path.write_bytes(b"%PDF-1.4\n%%EOF\n")
        os.utime(path, (time.time() - seconds_ago,) * 2)
    return kept


def test_the_sweep_removes_the_evidence_of_a_witnessed_request_never_recorded(service: Service,
                                                                               tmp_path: Path) -> None:
    """A witnessed request keeps its evidence (``ID.evidence``) before its upload row is recorded: a worker killed
    between the two left the folder, which no row names, for ever. Now the sweep removes it once untouched for
    ``leftovers_age`` and no upload has its id; never a younger one (a request being recorded now), the folder of a
    request queued or running, a link or another name."""
    s = service
    folder = private_dir(s.config.uploads)
    old, young = uploads.LEFTOVERS_KEPT.total_seconds() + 60, uploads.LEFTOVERS_KEPT.total_seconds() - 60
    outside = _evidence(tmp_path, "elsewhere.evidence", 2 * old)
    orphan = _evidence(folder, f"upl_{'a' * 20}.evidence", old)
    recording = _evidence(folder, f"upl_{'b' * 20}.evidence", young)
    with Registry(s.config.database) as reg, reg.write():
        for ident, state in ((f"upl_{'c' * 20}", "received"), (f"upl_{'d' * 20}", "verifying")):
            _upload(s, reg, ident, "witnessed", None, iso(dt.datetime.now(dt.UTC) - dt.timedelta(days=2)), None)
            reg.db.execute("UPDATE uploads SET state = ? WHERE id = ?", (state, ident))
    queued, running = (_evidence(folder, f"upl_{c * 20}.evidence", old) for c in "cd")
    near = [_evidence(folder, name, old) for name in (f"upl_{'e' * 19}.evidence", f"upl_{'E' * 20}.evidence",
                                                       f"upl_{'e' * 20}.evidence.old", f".upl_{'e' * 20}.evidence",
                                                       f"upl_{'e' * 20}.zip", f"upl_{'e' * 20}.evidenc")]
    not_folder = _left(folder / f"upl_{'f' * 20}.evidence", old)
    link = folder / f"upl_{'9' * 20}.evidence"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 2 * old,) * 2, follow_symlinks=False)
    assert uploads.sweep_leftovers(s.config) == [orphan]
    uploads.Sweeper(s.config).sweep()
    assert not orphan.exists()
    assert all((p / "SECURITY-013" / "audit.pdf").is_file() for p in (recording, queued, running, *near))
    assert not_folder.is_file() and link.is_symlink() and (outside / "SECURITY-013" / "audit.pdf").is_file()


def test_the_sweep_removes_the_evidence_of_a_witnessed_run_that_ended(service: Service) -> None:
    """A witnessed run's evidence folder was kept for ever once its run had made its bundle (which carries the
    evidence), or had been refused: the purge deletes the bundle only. The run removes it as it ends; what a worker
    killed before that left, the sweep removes once the run ended ``leftovers_age`` ago; never the folder of a run
    ended lately (one another worker's start refused may still be going)."""
    s = service
    folder = private_dir(s.config.uploads)
    old = uploads.LEFTOVERS_KEPT.total_seconds() + 60
    long_ago, lately = (iso(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=t)) for t in (old, 60))
    ended = {f"upl_{'a' * 20}": ("verified", long_ago), f"upl_{'b' * 20}": ("refused", long_ago)}
    going = {f"upl_{'c' * 20}": ("refused", lately), f"upl_{'d' * 20}": ("verified", lately),
             f"upl_{'e' * 20}": ("verifying", long_ago), f"upl_{'f' * 20}": ("received", long_ago)}
    with Registry(s.config.database) as reg, reg.write():
        for ident, (state, updated) in {**ended, **going}.items():
            _upload(s, reg, ident, "witnessed", None, long_ago, None)
            reg.db.execute("UPDATE uploads SET state = ?, updated = ? WHERE id = ?", (state, updated, ident))
    kept = {ident: _evidence(folder, f"{ident}.evidence", old) for ident in (*ended, *going)}
    assert sorted(uploads.sweep_leftovers(s.config)) == [kept[ident] for ident in sorted(ended)]
    assert all((kept[ident] / "SECURITY-013" / "audit.pdf").is_file() for ident in going)
