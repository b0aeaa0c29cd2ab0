"""Vendors' uploads: received streamed and size-bounded, then verified and decided like ``usine agency decide``.

States of an upload: ``received`` (the bytes are on disk) → ``verifying`` → ``verified`` (the run is in the
registry; its submission is then pending review, labelled or refused there) or ``refused`` (the evidence
did not verify, or is another vendor's: nothing recorded, every finding listed). Uploads are a queue in
the database: a worker that starts picks up what was received and not finished, and every worker sweeps it while
it runs (:class:`Sweeper`): an upload left verifying by a worker that died (its lease not renewed) is verified again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.agency.registry import Registry, Submission, iso
from conformity.agency.service.accounts import Account
from conformity.agency.service.audit import record
from conformity.agency.service.config import ServiceConfig
from conformity.agency.service.deps import still_allowed
from conformity.agency.service.problems import HTTPProblem
from conformity.agency.submit import decide_bundle
from conformity.counting import KeyedCounts
from conformity.db.connection import Connection
from conformity.errors import InputError
from conformity.files import move_into, private_dir, sweep_stale

log = logging.getLogger("usine.agency.service")
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member, or an empty zip (refused later)
_COLUMNS = ("id, vendor_id, kind, state, file_name, sha256, bytes, received, updated, submission, outcome, findings, "
            "request, progress")


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    vendor_id: str
    kind: str
    state: str
    file_name: str
    sha256: str | None
    bytes: int | None
    received: str
    updated: str
    submission: str | None
    outcome: dict[str, Any] | None
    findings: list[str]
    request: dict[str, Any] | None = None   # a witnessed run: what the vendor asked (driver URL, software, wave)
    progress: str | None = None             # a witnessed run: how far it is

    def to_json(self, sub: Submission | None, now: dt.datetime) -> dict[str, Any]:
        """What the vendor sees: the upload's state, then the submission's, the findings and reviewers' reasons."""
        doc: dict[str, Any] = {"id": self.id, "kind": self.kind, "state": self.state, "file_name": self.file_name,
                               "sha256": self.sha256, "bytes": self.bytes, "received": self.received,
                               "updated": self.updated, "findings": self.findings, "status": self.status(sub, now)}
        if self.kind == "witnessed":
            doc["witnessed"] = {"request": self.request, "progress": self.progress}
        if self.outcome is not None:
            o = self.outcome
            doc["decision"] = {k: o.get(k) for k in ("outcome", "submission", "recorded", "verified", "decided",
                                                     "vendor", "software", "wave", "category", "run", "reasons",
                                                     "failed_requirements", "rejected_reviews", "missing_evidence",
                                                     "awaiting_review", "label_id", "labelled_by", "revocation")
                              if k in o}
        if sub is not None:
            doc["submission"] = {"id": sub.id, "state": sub.effective_state(now), "label_id": sub.label_id,
                                 "decided": sub.decided}
            if sub.label_id:
                doc["label"] = f"/api/v1/labels/{sub.label_id}"
        return doc

    def status(self, sub: Submission | None, now: dt.datetime) -> str:
        """One word for the vendor: received, verifying, refused, awaiting-review, labelled, revoked, …"""
        if self.kind == "witnessed" and self.state in ("received", "verifying"):
            return "queued" if self.state == "received" else "running"
        if self.state != "verified":
            return self.state
        if sub is None:
            return str((self.outcome or {}).get("outcome", "verified"))
        state = sub.effective_state(now)
        return "awaiting-review" if state == "pending" else state


def _row(r: tuple[Any, ...]) -> Upload:
    return Upload(*r[:10], json.loads(r[10]) if r[10] else None,  # type: ignore[call-arg]  # the row's first ten columns are the first ten fields
                  json.loads(r[11]) if r[11] else [], json.loads(r[12]) if r[12] else None, r[13])


def new_id() -> str:
    return "upl_" + secrets.token_hex(10)


async def receive(chunks: AsyncIterator[bytes], config: ServiceConfig, declared: int | None) -> tuple[Path, str, int]:
    """Stream a body to a private file under the uploads folder: (path, sha256, bytes). 413 past the limit."""
    if declared is not None and declared > config.max_upload:
        raise HTTPProblem(413, "too-large", f"a bundle is at most {config.max_upload} bytes; this one declares {declared}",
                      max_bytes=config.max_upload)
    private_dir(config.uploads)
    path = config.uploads / f".incoming-{secrets.token_hex(12)}"
    digest, size, head = hashlib.sha256(), 0, b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > config.max_upload:
                    raise HTTPProblem(413, "too-large", f"a bundle is at most {config.max_upload} bytes: upload stopped "
                                                    f"past {config.max_upload}", max_bytes=config.max_upload)
                if len(head) < 4:
                    head = (head + chunk)[:4]
                digest.update(chunk)
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the upload is recorded as received
        if size == 0:
            raise HTTPProblem(400, "empty", "the request carried no bundle (send the zip as the body, "
                                        "Content-Type: application/zip)")
        if not head.startswith(ZIP_MAGIC):
            raise HTTPProblem(415, "not-a-zip", "an evidence bundle is a zip file (the bytes received do not start "
                                            "like one)")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


class Streaming:
    """The upload bodies this worker process is receiving, per vendor: at most ``limit`` at once. The queue's bound
    (:func:`check_room`) counts what is recorded; bodies still streaming are not yet — one vendor opening a hundred
    64 MiB uploads at once held a hundred connections and temporary files."""

    def __init__(self) -> None:
        self.counts = KeyedCounts()

    @contextmanager
    def slot(self, vendor_id: str, limit: int) -> Iterator[None]:
        """Hold one of the vendor's ``limit`` slots while its body streams (429 when none is free, nothing read)."""
        if not self.counts.enter(vendor_id, limit):
            raise HTTPProblem(429, "too-many-uploads-streaming",
                              f"{self.counts.held(vendor_id)} of your uploads are being received by this server now: "
                              f"at most {limit} at a time; send this one once one of them is in (nothing was read)",
                              headers={"Retry-After": "10"})
        try:
            yield
        finally:
            self.counts.leave(vendor_id)


#: this worker process's bodies in progress (one per process: each worker bounds its own connections)
streaming = Streaming()


def _clean_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/"))[:120]
    return "".join(c for c in base if c.isprintable() and c not in "\"'<>") or "bundle.zip"


@dataclass(frozen=True, slots=True)
class Bundle:
    """What decides whether a vendor's bundle (``uploads/ID.zip``, an upload's or a witnessed run's) is still kept for
    it: the upload's state and times, and its submission's state, software and wave (None: no submission)."""

    id: str
    vendor_id: str
    state: str
    bytes: int
    received: str
    updated: str
    submission_state: str | None
    decided: str | None
    software_id: str | None
    wave: str | None


def released(bundles: list[Bundle], cutoff: str) -> set[str]:
    """The bundles the agency no longer keeps for their vendor (``cutoff``: now less ``refused_kept``):

    * refused at verification, before ``cutoff``;
    * verified, but its submission refused by a decision (or not recorded: its version already labelled or revoked),
      decided (verified) before ``cutoff``;
    * verified and superseded: a later verified bundle of the same vendor, software and wave is labelled — the
      registry keeps the earlier run, its evidence, reviews and label; its zip is no longer the vendor's to keep.

    The latest bundle of a labelled software and wave, one awaiting review, one received or being verified: kept."""
    labelled: dict[tuple[str, str, str], tuple[str, str]] = {}  # (vendor, software, wave): the latest labelled one
    for b in bundles:
        if b.state == "verified" and b.submission_state == "labelled" and b.software_id and b.wave:
            key = (b.vendor_id, b.software_id, b.wave)
            labelled[key] = max(labelled.get(key, (b.received, b.id)), (b.received, b.id))
    out = set()
    for b in bundles:
        if b.state == "refused":
            gone = b.updated <= cutoff
        elif b.state != "verified":
            gone = False
        elif b.submission_state in (None, "refused"):
            gone = (b.decided or b.updated) <= cutoff
        else:
            latest = labelled.get((b.vendor_id, b.software_id or "", b.wave or ""))
            gone = latest is not None and latest > (b.received, b.id)
        if gone:
            out.add(b.id)
    return out


def bundles(db: Connection, vendor_id: str | None = None) -> list[Bundle]:
    """The bundles of one vendor's uploads and witnessed runs (of every vendor's: None), with their submissions."""
    rows = db.execute("SELECT u.id, u.vendor_id, u.state, coalesce(u.bytes, 0), u.received, u.updated, s.state, "
                      "s.decided, s.software_id, s.wave FROM uploads u LEFT JOIN submissions s ON s.id = u.submission"
                      + (" WHERE u.vendor_id = ?" if vendor_id is not None else ""),
                      (vendor_id,) if vendor_id is not None else ()).fetchall()
    return [Bundle(*r) for r in rows]


def unpurged(db: Connection, cutoff: str) -> list[Bundle]:
    """The bundles :func:`purge_released` may have to delete (every vendor's): those not deleted yet (``purged`` NULL),
    verified, or refused before ``cutoff`` — read by the partial index ``uploads_unpurged``; never the rows whose
    bundle the sweep deleted (the agency's whole history), nor those received, being verified or refused lately.
    :func:`released` of these is :func:`released` of every bundle, less the ones deleted already: the latest labelled
    bundle of a software and wave, which decides what it supersedes, is never released, so never deleted."""
    rows = db.execute("SELECT u.id, u.vendor_id, u.state, coalesce(u.bytes, 0), u.received, u.updated, s.state, "
                      "s.decided, s.software_id, s.wave FROM uploads u LEFT JOIN submissions s ON s.id = u.submission "
                      "WHERE u.purged IS NULL AND (u.state = 'verified' OR (u.state = 'refused' AND u.updated <= ?))",
                      (cutoff,)).fetchall()
    return [Bundle(*r) for r in rows]


def kept_bytes(config: ServiceConfig, vendor_id: str, db: Connection, now: dt.datetime | None = None) -> int:
    """The bytes of this vendor's bundles the agency keeps for it (uploads and witnessed runs; :func:`released`
    says which no longer count, and the sweep deletes them)."""
    cutoff = iso((now or dt.datetime.now(dt.UTC)) - config.refused_kept)
    mine = bundles(db, vendor_id)
    gone = released(mine, cutoff)
    return sum(b.bytes for b in mine if b.id not in gone)


def check_room(config: ServiceConfig, vendor_id: str, db: Connection, size: int | None = None) -> None:
    """Refuse an upload before it is kept: 429 when this vendor already has ``config.uploads_in_flight`` uploads
    received and not yet verified (each worker verifies two at a time for every vendor, and one vendor's queue would
    hold every other's); 413 when the bytes kept of its uploads and this one's (``size``, when known) would pass
    ``config.vendor_storage`` (one vendor's refused bundles, sent again and again, would fill the agency's disk)."""
    waiting = [r[0] for r in db.execute("SELECT id FROM uploads WHERE vendor_id = ? AND kind = 'upload' AND state IN "
                                        "('received', 'verifying') ORDER BY received, id", (vendor_id,)).fetchall()]
    if len(waiting) >= config.uploads_in_flight:
        raise HTTPProblem(429, "too-many-uploads-waiting",
                          f"your uploads {', '.join(waiting)} are not verified yet: at most {config.uploads_in_flight} "
                          "wait at a time; send this one again once one of them is verified or refused (nothing was "
                          "kept)", headers={"Retry-After": "30"}, waiting=waiting)
    check_storage(config, vendor_id, db, size)


def check_storage(config: ServiceConfig, vendor_id: str, db: Connection, size: int | None = None) -> None:
    """413 when the bytes kept of this vendor's bundles (:func:`kept_bytes`) and this one's (``size``, when known)
    would pass ``config.vendor_storage`` (an upload, or a witnessed run whose bundle the agency makes)."""
    kept = kept_bytes(config, vendor_id, db)
    if kept + (size or 0) > config.vendor_storage or (size is None and kept >= config.vendor_storage):
        days = config.refused_kept.days
        raise HTTPProblem(413, "vendor-storage-full",
                          f"the agency keeps at most {config.vendor_storage} bytes of your bundles and keeps {kept} now"
                          + (f"; this bundle ({size} bytes) would pass it" if size else "")
                          + f": refused bundles are deleted {days} day(s) after their refusal, earlier ones of a "
                          "software and wave once a later one is labelled; or ask the agency for more room (nothing "
                          "was kept)", kept_bytes=kept, max_bytes=config.vendor_storage)


def register(config: ServiceConfig, acct: Account, incoming: Path, sha: str, size: int, name: str,
             client: str) -> Upload:
    """Record a received upload (state ``received``) and move its file into place; 429 or 413 (its file removed) when
    the vendor has too many uploads waiting or too many bytes kept (:func:`check_room`, in the same transaction)."""
    assert acct.vendor_id is not None
    ident, now = new_id(), iso(dt.datetime.now(dt.UTC))
    try:  # the token or session checked again holding the lock (a disable or reset may have committed meanwhile)
        with Registry(config.database, guard=still_allowed(acct)) as reg, reg.write() as db:
            check_room(config, acct.vendor_id, db, size)
            move_into(incoming, config.uploads / f"{ident}.zip")
            db.execute("INSERT INTO uploads (id, account, vendor_id, kind, state, file_name, sha256, bytes, received, "
                       "updated) VALUES (?, ?, ?, 'upload', 'received', ?, ?, ?, ?, ?)",
                       (ident, acct.id, acct.vendor_id, _clean_name(name), sha, size, now, now))
            record(db, acct.login, acct.role, "upload", ident, f"{_clean_name(name)}: {size} bytes, sha256 {sha}",
                   client)
    except BaseException:  # nothing recorded: neither the body received nor the file moved into place is kept
        incoming.unlink(missing_ok=True)
        (config.uploads / f"{ident}.zip").unlink(missing_ok=True)
        raise
    return get(config, ident)


def get(config: ServiceConfig, ident: str, vendor_id: str | None = None) -> Upload:
    """An upload by id; another vendor's (``vendor_id`` given) is as unknown as a missing one."""
    with Registry(config.database) as reg:
        row = reg.db.execute(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", (ident,)).fetchone()
    if row is None or (vendor_id is not None and row[1] != vendor_id):
        raise HTTPProblem(404, "no-such-submission", f"no submission {ident!r} of yours (vendor {vendor_id})"
                      if vendor_id else f"no upload {ident!r}")
    return _row(row)


def of_vendor(config: ServiceConfig, vendor_id: str, limit: int = 200) -> list[Upload]:
    with Registry(config.database) as reg:
        rows = reg.db.execute(f"SELECT {_COLUMNS} FROM uploads WHERE vendor_id = ? ORDER BY received DESC, id LIMIT ?",
                              (vendor_id, limit)).fetchall()
    return [_row(r) for r in rows]


def witnessed_of(config: ServiceConfig, submission: str) -> Upload | None:
    """The witnessed run that recorded a submission, if one did (the agency made its evidence)."""
    with Registry(config.database) as reg:
        row = reg.db.execute(f"SELECT {_COLUMNS} FROM uploads WHERE submission = ? AND kind = 'witnessed' "
                             "AND state = 'verified' ORDER BY received LIMIT 1", (submission,)).fetchone()
    return _row(row) if row else None


def submission_of(config: ServiceConfig, upload: Upload) -> Submission | None:
    if upload.submission is None:
        return None
    with Registry(config.database) as reg:
        try:
            return reg.get(upload.submission)
        except InputError:
            return None  # verified but not recorded (a revoked version, or one already labelled)


def _claim(config: ServiceConfig, ident: str) -> bool:
    """Move one upload from received to verifying (only one worker wins)."""
    with Registry(config.database) as reg, reg.write() as db:
        n = db.execute("UPDATE uploads SET state = 'verifying', updated = ? WHERE id = ? AND state = 'received' "
                       "RETURNING id", (iso(dt.datetime.now(dt.UTC)), ident)).fetchall()
    return bool(n)


def _public(text: str, private: dict[str, str]) -> str:
    """``text`` with each of the agency's own paths (longest first) replaced by what a vendor may read."""
    for path, shown in sorted(private.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, shown)
    return text


def process(config: ServiceConfig, ident: str) -> None:
    """Verify and decide one received upload; its final state and findings recorded. Never raises."""
    try:
        if _claim(config, ident):
            verify_claimed(config, ident)
    finally:
        with _mine:
            _queued.discard(ident)


def verify_claimed(config: ServiceConfig, ident: str) -> None:
    """Verify and decide the bundle of an upload in state ``verifying`` (``uploads/ID.zip``); never raises. Its lease
    is renewed by this process's sweeper meanwhile."""
    with _mine:
        _verifying.add(ident)
    try:
        _verify_claimed(config, ident)
    finally:
        with _mine:
            _verifying.discard(ident)


def _size(path: Path) -> int | None:
    """The bytes of a file, None when there is none (a witnessed run stopped before its bundle was made)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _verify_claimed(config: ServiceConfig, ident: str) -> None:
    up = get(config, ident)
    bundle = config.uploads / f"{ident}.zip"
    findings: list[str] = []
    outcome: dict[str, Any] | None = None
    try:
        result = decide_bundle(config.uploads / f"{ident}.zip", config.catalog, config.trust, config.database,
                               config.key_path, config.decisions / ident, limits=config.zip_limits, vendor=up.vendor_id,
                               same_person=config.same_person)
        outcome = result.doc
        verified = result.decision.verified
        findings = [f"{p.file or 'bundle'}{' at ' + p.where if p.where else ''}: {p.message}"
                    for p in result.decision.decision.reasons]
    except InputError as exc:
        verified, findings = False, [str(p) for p in exc.problems]
    except Exception as exc:
        log.exception("upload %s could not be processed", ident)
        verified, findings = False, [f"the agency could not process this bundle ({type(exc).__name__}); it was not "
                                     "recorded: submit it again, or contact the agency"]
    # what the vendor reads names its upload, never where the agency keeps it (the server's folders and files)
    private = {str(config.uploads / f"{ident}.zip"): up.file_name or "the bundle", f"{ident}.zip": up.file_name
               or "the bundle", str(config.database): "the registry", str(config.data): "the agency's data"}
    findings = [_public(f, private) for f in findings]
    if outcome is not None:  # the decision the vendor reads too (its reasons and bundle name); the decision file
        outcome = json.loads(_public(json.dumps(outcome), private))  # in the agency's folder keeps the original
    state = "verified" if verified else "refused"
    with Registry(config.database) as reg, reg.write() as db:
        db.execute("UPDATE uploads SET state = ?, updated = ?, submission = ?, outcome = ?, findings = ?, "
                   "bytes = coalesce(bytes, ?) WHERE id = ?",
                   (state, iso(dt.datetime.now(dt.UTC)), (outcome or {}).get("submission") if verified else None,
                    json.dumps(outcome, sort_keys=True) if outcome else None, json.dumps(findings), _size(bundle),
                    ident))
        record(db, "agency", "system", f"upload-{state}", ident,
               (f"submission {(outcome or {}).get('submission')}: {(outcome or {}).get('outcome')}" if verified
                else "; ".join(findings))[:4000])


#: the uploads this process is verifying now (their leases renewed by its sweeper) and those queued here
_verifying: set[str] = set()
_queued: set[str] = set()
_mine = threading.Lock()


def pending_uploads(config: ServiceConfig, stale: dt.timedelta | None = None) -> Iterator[str]:
    """Uploads received and not processed (and ones left verifying by a worker that stopped: their lease, ``stale``
    or the config's, not renewed), oldest first."""
    with Registry(config.database) as reg, reg.write() as db:
        db.execute("UPDATE uploads SET state = 'received' WHERE state = 'verifying' AND kind = 'upload' AND updated < ?",
                   (iso(dt.datetime.now(dt.UTC) - (stale or config.verify_lease)),))
        rows = db.execute("SELECT id FROM uploads WHERE state = 'received' AND kind = 'upload' "
                          "ORDER BY received").fetchall()
    yield from (r[0] for r in rows)


def renew_leases(config: ServiceConfig) -> int:
    """Renew the lease of each upload this process is verifying; how many."""
    with _mine:
        mine = sorted(_verifying)
    if not mine:
        return 0
    with Registry(config.database) as reg, reg.write() as db:
        db.execute(f"UPDATE uploads SET updated = ? WHERE state = 'verifying' AND id IN ({', '.join('?' * len(mine))})",
                   (iso(dt.datetime.now(dt.UTC)), *mine))
    return len(mine)


def purge_released(config: ServiceConfig, now: dt.datetime | None = None) -> list[str]:
    """Delete the bundles the agency no longer keeps for their vendor (:func:`released`: refused ones
    ``config.refused_kept`` after their refusal, superseded ones at once; their rows, findings, the registry's runs,
    evidence and labels, and audit entries stay); the ids whose bundle this call deleted.

    Every worker's sweeper purges, two at once too: a bundle is this call's when its own unlink removed it (one
    unlink succeeds), never when it was merely seen; a bundle that cannot be deleted is logged and left (the next
    sweep tries again), holding neither the others nor the sweep."""
    at = now or dt.datetime.now(dt.UTC)
    cutoff = iso(at - config.refused_kept)
    with Registry(config.database) as reg:
        old = sorted(released(unpurged(reg.db, cutoff), cutoff))
    gone, done = [], []
    for ident in old:
        try:
            (config.uploads / f"{ident}.zip").unlink()
        except FileNotFoundError:
            done.append(ident)  # deleted by an earlier sweep (before rows were marked), or another worker's now
            continue
        except OSError as exc:
            log.warning("the bundle of upload %s could not be deleted: %s", ident, exc)
            continue
        gone.append(ident)
    if gone or done:
        with Registry(config.database) as reg, reg.write() as db:
            for chunk in _chunks([*gone, *done]):  # one query's parameters at a time, as unneeded reads them
                db.execute(f"UPDATE uploads SET purged = ? WHERE purged IS NULL AND id IN ({', '.join('?' * len(chunk))})",
                           (iso(at), *chunk))
    if gone:
        with Registry(config.database) as reg, reg.write() as db:
            record(db, "agency", "system", "uploads-purged", "uploads",
                   f"the bundles of {len(gone)} upload(s) refused before {cutoff} or superseded by a labelled one "
                   f"deleted: {', '.join(gone)}"[:4000])
    return gone


#: what a killed worker leaves in the uploads folder is removed by the sweep once nothing in it was modified for this
#: long (or twice a witnessed run's time bound, if more: :func:`leftovers_age`). A body being received is written as
#: it streams, and moved to its upload's name at once (seconds); a witnessed run's work folder is made when the run
#: starts and written only as it ends: the longest, stopped past ``WitnessConfig.timeout`` (30 minutes by default,
#: a day at most) between two scenarios, the one running then still finishing.
LEFTOVERS_KEPT = dt.timedelta(hours=6)
_INCOMING = re.compile(r"\.incoming-[0-9a-f]{24}")  # receive's body: secrets.token_hex(12)
_WITNESS_WORK = re.compile(r"witness-upl_[0-9a-f]{20}-[a-z0-9_]{8}")  # witnessed.run's: new_id(), then mkdtemp's
_EVIDENCE = re.compile(r"upl_[0-9a-f]{20}\.evidence")  # witnessed.request_run's: new_id()'s
_ROWS_READ = 500  # ids per query of :func:`unneeded`


def leftovers_age(config: ServiceConfig) -> dt.timedelta:
    """How long an ``.incoming-*`` body or a ``witness-*`` work folder is left untouched before the sweep removes it:
    :data:`LEFTOVERS_KEPT`, or twice the witnessed runs' time bound when longer."""
    witness = config.witness
    return max(LEFTOVERS_KEPT, 2 * dt.timedelta(seconds=witness.timeout)) if witness else LEFTOVERS_KEPT


def sweep_leftovers(config: ServiceConfig) -> list[Path]:
    """Remove what workers killed (SIGKILL, a power cut) left in the uploads folder: bodies received part-way or not
    yet recorded (``.incoming-*``), witnessed runs' work folders (``witness-*``) and the evidence (``ID.evidence``) of
    witnessed requests never recorded or whose run ended (:func:`unneeded`), older than :func:`leftovers_age`.
    Links and other names are left, never followed; never raises; what it removed."""
    age = leftovers_age(config)
    cutoff = iso(dt.datetime.now(dt.UTC) - age)
    return [*sweep_stale(config.uploads, _INCOMING, age, kind="file"),
            *sweep_stale(config.uploads, _WITNESS_WORK, age, kind="folder"),
            *sweep_stale(config.uploads, _EVIDENCE, age, kind="folder",
                         unclaimed=lambda names: unneeded(config, names, cutoff))]


def unneeded(config: ServiceConfig, names: list[str], cutoff: str) -> set[str]:
    """Of these ``ID.evidence`` folders, those no run will read: of no upload (a request whose worker was killed
    before it was recorded; one being recorded now is young, and the sweep's age keeps it), or of a witnessed run
    that ended (refused or verified: its bundle carries the evidence) before ``cutoff`` (one refused lately by
    another worker's start may still be going). None when the registry cannot be read (logged)."""
    ids = {n.removesuffix(".evidence"): n for n in names}
    try:
        with Registry(config.database) as reg:
            needed = {r[0] for chunk in _chunks(sorted(ids)) for r in reg.db.execute(
                f"SELECT id FROM uploads WHERE id IN ({', '.join('?' * len(chunk))}) "
                "AND NOT (state IN ('refused', 'verified') AND updated <= ?)", (*chunk, cutoff)).fetchall()}
    except Exception as exc:  # the database away for a while: every folder kept, the next sweep tries again
        log.warning("the witnessed requests' evidence folders were not swept: %s", exc)
        return set()
    return {n for ident, n in ids.items() if ident not in needed}


def _chunks(items: list[str]) -> Iterator[list[str]]:
    """``items`` by :data:`_ROWS_READ` (one query's parameters)."""
    return (items[i:i + _ROWS_READ] for i in range(0, len(items), _ROWS_READ))


class Sweeper:
    """A worker's thread that, every third of the verification lease, renews the leases of what it verifies and takes
    up what no worker is doing: received and not queued, or left verifying past its lease (its worker killed); then
    deletes the bundles no longer kept and what killed workers left (:func:`sweep_leftovers`)."""

    def __init__(self, config: ServiceConfig):
        self.config = config
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="usine-upload-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def sweep(self) -> None:
        renew_leases(self.config)
        for ident in pending_uploads(self.config):
            with _mine:
                if ident in _queued or ident in _verifying:
                    continue
            process_later(self.config, ident)
        purge_released(self.config)  # last: housekeeping that fails holds no vendor's upload
        for left in sweep_leftovers(self.config):
            log.info("removed %s, left by a worker that was killed", left)

    def _loop(self) -> None:
        while not self.stop.wait(self.config.verify_lease.total_seconds() / 3):
            try:
                self.sweep()
            except Exception:  # a database that is away for a while: the next sweep tries again
                log.exception("the uploads sweep failed")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


class Background:
    """Threads of this worker process for work done after answering, started on first use."""

    def __init__(self, threads: int, name: str):
        self.threads, self.name = threads, name
        self.pool: ThreadPoolExecutor | None = None
        self.lock = threading.Lock()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=self.name)
        self.pool.submit(fn, *args)


_verifiers = Background(2, "usine-verify")


def process_later(config: ServiceConfig, ident: str) -> None:
    """Process in the background (the answer does not wait): two verifications at a time per worker process."""
    with _mine:
        _queued.add(ident)
    _verifiers.submit(process, config, ident)
