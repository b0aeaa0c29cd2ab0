"""What a vendor's token or account may do changes at once, even for a request already under way."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformity.agency.registry import Registry, iso
from conformity.agency.service import accounts, uploads
from conformity.catalog import Catalog
from tests.agency.helpers import Runs
from tests.agency.service_client import Served, Service, make_service


@pytest.mark.parametrize("action", ["disable", "rotate"])
def test_an_upload_in_flight_when_its_account_is_disabled_or_its_token_rotated_is_refused(
        sqlite_service: Service, runs: Runs, action: str) -> None:
    """The token was checked before the body streamed only: an upload still coming in when an admin disabled the
    account (or rotated its token) was recorded, verified and decided (202)."""
    s = sqlite_service
    served = Served(s.config)
    body = runs.reference.read_bytes()

    def slowly() -> Iterator[bytes]:
        yield body[:4096]
        time.sleep(0.3)  # the server is reading this body now
        with Registry(s.config.database) as reg:
            if action == "disable":
                accounts.set_disabled(reg.db, "ref", True, accounts.Actor("root", "admin"))
            else:
                accounts.rotate_token(reg.db, accounts.account(reg.db, "ref"), "rotated", accounts.Actor("root", "admin"))  # type: ignore[arg-type]
        yield body[4096:]

    try:
        r = httpx.post(f"{served.url}/api/v1/submissions", content=slowly(), timeout=60,
                       headers={"Authorization": f"Bearer {s.token}", "Content-Type": "application/zip",
                                "Content-Length": str(len(body))})
    finally:
        served.close()
    assert r.status_code == 401, r.text
    assert s.table("SELECT id FROM uploads") == [] and s.table("SELECT id FROM submissions") == []
    assert not [p for p in s.config.uploads.glob("*") if p.is_file()]  # nor its file kept


def test_an_upload_left_verifying_by_a_killed_worker_is_verified_by_a_running_one(
        runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> None:
    """Only a worker's start re-queued what a dead worker left verifying, and only 10 minutes on: with the other
    workers running on, the vendor read "verifying" for ever. Now every worker sweeps: a lease not renewed (here
    0.6 s) is taken up again."""
    s = make_service(tmp_path / "registry.sqlite3", runs, catalog, home, tmp_path,
                     verify_lease=dt.timedelta(seconds=0.6))
    with Registry(s.config.database) as reg:
        acct = accounts.account(reg.db, "ref")
    assert acct is not None
    incoming = s.config.uploads / ".incoming-test"
    s.config.uploads.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(runs.reference, incoming)
    up = uploads.register(s.config, acct, incoming, "0" * 64, incoming.stat().st_size, "bundle.zip", "test")
    long_ago = iso(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with Registry(s.config.database) as reg, reg.write() as db:  # claimed by a worker that was then killed
        db.execute("UPDATE uploads SET state = 'verifying', updated = ? WHERE id = ?", (long_ago, up.id))
    served = Served(s.config)
    try:
        with Registry(s.config.database) as reg, reg.write() as db:  # after the new worker's start-up pick-up
            db.execute("UPDATE uploads SET state = 'verifying', updated = ? WHERE id = ?", (long_ago, up.id))
        deadline = time.monotonic() + 60
        # taken up: verifying → received (its lease lapsed) → verifying → verified; both may be read on the way
        while uploads.get(s.config, up.id).state in ("verifying", "received") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert uploads.get(s.config, up.id).state == "verified", uploads.get(s.config, up.id)
    finally:
        served.close()
        s.config.database.dispose()


def test_the_worker_verifying_an_upload_renews_its_lease(sqlite_service: Service, runs: Runs) -> None:
    s = sqlite_service
    with Registry(s.config.database) as reg:
        acct = accounts.account(reg.db, "ref")
    assert acct is not None
    s.config.uploads.mkdir(parents=True, exist_ok=True)
    incoming = s.config.uploads / ".incoming-test"
    shutil.copyfile(runs.reference, incoming)
    up = uploads.register(s.config, acct, incoming, "0" * 64, incoming.stat().st_size, "bundle.zip", "test")
    long_ago = iso(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with Registry(s.config.database) as reg, reg.write() as db:
        db.execute("UPDATE uploads SET state = 'verifying', updated = ? WHERE id = ?", (long_ago, up.id))
    uploads._verifying.add(up.id)  # this process is verifying it
    try:
        assert uploads.renew_leases(s.config) == 1
    finally:
        uploads._verifying.discard(up.id)
    assert uploads.get(s.config, up.id).updated > long_ago
    assert list(uploads.pending_uploads(s.config)) == []  # not taken from the worker doing it


def test_an_upload_through_the_web_form_in_flight_when_its_account_is_disabled_is_refused(
        sqlite_service: Service, runs: Runs) -> None:
    """The API's upload checks its token again once the body is in; the vendor's web form did not: a session checked
    before the form streamed recorded, verified and decided an upload that was still coming in when an admin
    disabled the account (its sessions ended)."""
    s = sqlite_service
    with Registry(s.config.database) as reg:
        vendor = accounts.account(reg.db, "ref")
        assert vendor is not None
        sid, session = accounts.start_session(reg.db, vendor, s.config.session_idle, s.config.session_max)
    served = Served(s.config)
    form = httpx.Request("POST", f"{served.url}/vendor/upload", data={"csrf": session.csrf},
                         files={"bundle": ("b.zip", runs.reference.read_bytes(), "application/zip")})
    body = form.read()

    def slowly() -> Iterator[bytes]:
        yield body[:4096]
        time.sleep(0.3)  # the server is reading this form now
        with Registry(s.config.database) as reg:
            accounts.set_disabled(reg.db, "ref", True, accounts.Actor("root", "admin"))
        yield body[4096:]

    try:
        r = httpx.post(f"{served.url}/vendor/upload", content=slowly(), timeout=60,
                       headers={"Cookie": f"__Host-usine_session={sid}", "Accept": "application/json",
                                "Content-Type": form.headers["content-type"], "Content-Length": str(len(body))})
    finally:
        served.close()
    assert r.status_code == 401, (r.status_code, r.text)
    assert s.table("SELECT id FROM uploads") == [] and s.table("SELECT id FROM submissions") == []
    assert not [p for p in s.config.uploads.glob("*") if p.is_file()]  # nor its file kept


def test_a_vendor_with_uploads_waiting_to_be_verified_cannot_queue_more(sqlite_service: Service, runs: Runs) -> None:
    """Each worker verifies two uploads at a time, oldest first, for every vendor: one vendor's script sending a
    thousand bundles queued them all, and every other vendor's upload waited hours behind them. A vendor has at most
    ``uploads_in_flight`` uploads received and not yet verified; one more is refused (429, which ones wait), nothing
    kept; other vendors are not held."""
    s = sqlite_service
    now = iso(dt.datetime.now(dt.UTC))
    with Registry(s.config.database) as reg, reg.write() as db:
        account = db.execute("SELECT id FROM accounts WHERE login = 'ref'").fetchone()[0]
        for n in range(s.config.uploads_in_flight):
            db.execute("INSERT INTO uploads (id, account, vendor_id, kind, state, file_name, received, updated) "
                       "VALUES (?, ?, 'usine-reference', 'upload', ?, 'b.zip', ?, ?)",
                       (f"upl_waiting{n}", account, "received" if n % 2 else "verifying", now, now))
    r = s.vendor().post("/api/v1/submissions", content=runs.reference.read_bytes(),
                        headers={"Content-Type": "application/zip"})
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json", r.text
    assert "upl_waiting0" in r.json()["detail"] and int(r.headers["retry-after"]) > 0, r.json()
    assert len(s.table("SELECT id FROM uploads")) == s.config.uploads_in_flight
    assert not [p for p in s.config.uploads.glob("*") if p.is_file()]
    other = s.vendor(s.other_token).post("/api/v1/submissions", content=runs.defective.read_bytes(),
                                         headers={"Content-Type": "application/zip"})
    assert other.status_code == 202, other.text


def test_a_vendor_whose_refused_bundles_fill_its_room_is_refused_until_they_are_deleted(
        runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> None:
    """The agency kept every upload's bundle for ever, refused ones too: a vendor sending a 64 MB zip the agency
    refuses, again and again (three at a time), filled the agency's disk. The bytes kept of one vendor's uploads are
    bounded (``vendor_storage``: 413 vendor-storage-full, nothing kept, before the body is read when its length is
    declared); a refused upload's bundle is deleted ``refused_kept`` after its refusal (its row and findings stay),
    which gives the room back; another vendor is not held."""
    junk = b"PK\x03\x04" + b"not a bundle" * 100  # a zip's first bytes, refused at verification
    s = make_service(tmp_path / "registry.sqlite3", runs, catalog, home, tmp_path, vendor_storage=3 * len(junk),
                     refused_kept=dt.timedelta(days=7))

    def send(token: str | None = None, body: bytes = junk) -> httpx.Response:
        return s.vendor(token).post("/api/v1/submissions", content=body, headers={"Content-Type": "application/zip"})

    try:
        for _ in range(3):
            r = send()
            assert r.status_code == 202 and r.json()["state"] == "refused", r.text
        kept = sorted(p.name for p in s.config.uploads.glob("*.zip"))
        r = send()
        assert r.status_code == 413 and r.json()["type"].endswith(":vendor-storage-full"), r.text
        assert f"keeps {3 * len(junk)} now" in r.json()["detail"] and "7 day(s)" in r.json()["detail"]
        assert sorted(p.name for p in s.config.uploads.glob("*.zip")) == kept  # nothing kept
        assert not list(s.config.uploads.glob(".incoming-*"))
        assert len(s.table("SELECT id FROM uploads")) == 3
        assert send(s.other_token).status_code == 202  # another vendor's room is its own

        assert uploads.purge_released(s.config) == []  # refused today: kept for the vendor to look into
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
        gone = uploads.purge_released(s.config, now=later)
        assert len(gone) == 4 and not list(s.config.uploads.glob("*.zip"))
        assert s.table("SELECT count(*) FROM uploads WHERE state = 'refused' AND findings IS NOT NULL") == [(4,)]
        assert s.table("SELECT action FROM audit WHERE action = 'uploads-purged'") == [("uploads-purged",)]
        with Registry(s.config.database) as reg, reg.write() as db:  # as if the refusals were eight days old
            db.execute("UPDATE uploads SET updated = ?", (iso(dt.datetime.now(dt.UTC) - dt.timedelta(days=8)),))
        with Registry(s.config.database) as reg:
            assert uploads.kept_bytes(s.config, "usine-reference", reg.db) == 0
        assert send().status_code == 202  # the room is back
    finally:
        s.config.database.dispose()


def _refused_long_ago(s: Service, n: int) -> list[str]:
    """``n`` refused uploads of the reference vendor, refused 40 days ago (their bundles due for deletion)."""
    junk = b"PK\x03\x04" + b"not a bundle" * 10
    ids = []
    for _ in range(n):
        r = s.vendor().post("/api/v1/submissions", content=junk, headers={"Content-Type": "application/zip"})
        assert r.status_code == 202 and r.json()["state"] == "refused", r.text
        ids.append(r.json()["id"])
    with Registry(s.config.database) as reg, reg.write() as db:
        db.execute("UPDATE uploads SET updated = ?", (iso(dt.datetime.now(dt.UTC) - dt.timedelta(days=40)),))
    return ids


def test_two_sweepers_purging_at_once_delete_and_report_each_bundle_once(
        sqlite_service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker's sweeper purges; two at once both saw a bundle there (``exists()``), both unlinked it
    (``missing_ok``) and both wrote an audit entry saying they deleted it. A bundle is counted as deleted by the
    sweeper whose unlink removed it, and by no other: here a second sweeper runs in full between the first one's
    look and its unlink."""
    s = sqlite_service
    ids = _refused_long_ago(s, 2)
    real_unlink, nested = Path.unlink, []

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if not nested and self.parent == s.config.uploads:
            nested.append([])
            nested[0] = uploads.purge_released(s.config)  # the other worker's sweep, at the worst moment
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    first = uploads.purge_released(s.config)
    assert sorted(nested[0]) == sorted(ids) and first == []
    assert not list(s.config.uploads.glob("*.zip"))
    entries = s.table("SELECT detail FROM audit WHERE action = 'uploads-purged'")
    assert len(entries) == 1 and all(i in str(entries[0][0]) for i in ids), entries


def test_a_bundle_that_cannot_be_deleted_holds_neither_the_other_deletions_nor_the_queue(
        sqlite_service: Service) -> None:
    """The sweep purged before taking up the queue, and the first bundle it could not delete (here a folder where
    the bundle was) raised out of it: every sweep of every worker then failed at that bundle, the others were never
    deleted, and an upload left received (its worker stopped) was never verified. The bundle that cannot be deleted is
    logged and left; the others are deleted; the queue is taken up."""
    s = sqlite_service
    stuck, other = _refused_long_ago(s, 2)
    (s.config.uploads / f"{stuck}.zip").unlink()
    (s.config.uploads / f"{stuck}.zip").mkdir()
    (s.config.uploads / f"{stuck}.zip" / "x").write_bytes(b"x")
    with Registry(s.config.database) as reg:
        acct = accounts.account(reg.db, "ref")
    assert acct is not None
    incoming = s.config.uploads / ".incoming-test"
    incoming.write_bytes(b"PK\x03\x04 left received by a worker that stopped")
    waiting = uploads.register(s.config, acct, incoming, "0" * 64, incoming.stat().st_size, "late.zip", "test")
    uploads.Sweeper(s.config).sweep()
    deadline = time.monotonic() + 30
    while uploads.get(s.config, waiting.id).state in ("received", "verifying") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uploads.get(s.config, waiting.id).state == "refused"  # taken up (and refused: not a bundle)
    assert not (s.config.uploads / f"{other}.zip").exists()
    assert (s.config.uploads / f"{stuck}.zip").is_dir()
    assert s.table("SELECT detail FROM audit WHERE action = 'uploads-purged'")[0][0].count("upl_") == 1  # type: ignore[union-attr]


def test_a_vendor_streaming_more_uploads_at_once_than_it_may_is_refused_before_reading(
        sqlite_service: Service, runs: Runs) -> None:
    """QA (agencyattack, not fixed then): the queue's bound and the storage bound count what is recorded; a vendor
    opening many uploads at once held as many connections and temporary files while they streamed. A worker receives
    at most ``uploads_in_flight`` of one vendor's bodies at once (429 too-many-uploads-streaming, nothing read);
    another vendor is not held, and the slots come back when the bodies are in."""
    s = sqlite_service
    served = Served(s.config)
    body = runs.reference.read_bytes()
    release = threading.Event()
    answers: list[int] = []

    def held() -> Iterator[bytes]:
        yield body[:4096]
        release.wait(30)  # the server is reading these bodies now
        yield body[4096:]

    def send(token: str, content: Any) -> int:
        return httpx.post(f"{served.url}/api/v1/submissions", content=content, timeout=60,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip",
                                   "Content-Length": str(len(body))}).status_code

    threads = [threading.Thread(target=lambda: answers.append(send(s.token, held())))
               for _ in range(s.config.uploads_in_flight)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(list(s.config.uploads.glob(".incoming-*"))) < s.config.uploads_in_flight \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        r = httpx.post(f"{served.url}/api/v1/submissions", content=body, timeout=60,
                       headers={"Authorization": f"Bearer {s.token}", "Content-Type": "application/zip"})
        assert r.status_code == 429 and r.json()["type"].endswith(":too-many-uploads-streaming"), r.text
        assert send(s.other_token, body) == 202  # another vendor streams meanwhile
        release.set()
        for t in threads:
            t.join(60)
        assert sorted(answers) == [202] * s.config.uploads_in_flight
        assert not uploads.streaming.counts  # every slot given back
    finally:
        release.set()
        served.close()
