"""The agency's decide step end to end: verify, decide, record once in the registry, write the outcome.

A bundle whose evidence does not verify is refused without being recorded: its manifest's claims
(vendor, software) are unproven, and the registry and the public progress only count verified evidence.
A verified bundle is known by the run it carries (``RunIdentity``): the same run in any packaging is
the same submission and gets its recorded decision back, nothing issued. A submission that waits for
reviews (pending) is decided again from what the registry holds (``decide_submission``: by its id,
no bundle needed; or any bundle of the run). Before anything is issued, in the same transaction: a
version whose label in the wave was revoked (and not reinstated) gets nothing (``revoked``, not
recorded), and a version already holding a label in force gets no second one (not recorded).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.agency.bundlezip import DEFAULT_LIMITS, ZipLimits
from conformity.agency.decision import (
    EXIT,
    Decision,
    Facts,
    Waiver,
    decide,
    revoked,
    specification_changes,
    unverified,
    waiver_problems,
)
from conformity.agency.decision_doc import DecisionDoc, decision_doc, who_of_facts, who_of_manifest
from conformity.agency.persons import SAME_PERSON_PERIOD
from conformity.agency.registry import Registry, Submission, iso
from conformity.agency.verify import verify_bundle
from conformity.catalog import Catalog, Wave
from conformity.db.connection import Connection, Database
from conformity.errors import InputError, Problem
from conformity.files import output_set, private_dir, refuse_link_to_nothing, writable_output, write_atomic
from conformity.labels import LabelDoc, SignedLabel, new_label_id, sign_label
from conformity.naming import owned_software_id, ownership_problem
from conformity.paths import state_dir
from conformity.signing import KeyRing, SigningKey

TRUST_ENV = "USINE_TRUSTED_SANDBOX_KEYS"
REGISTRY_ENV = "USINE_REGISTRY"


def agency_dir() -> Path:
    return state_dir() / "agency"


def default_trust_dir() -> Path:
    return agency_dir() / "trusted-sandbox-keys"


def default_agency_key() -> Path:
    return agency_dir() / "agency-key.pem"


def default_registry() -> Path:
    return agency_dir() / "registry.sqlite3"


def public_key_path(key_path: Path) -> Path:
    """Where ``SigningKey.save`` puts the public key of ``key_path``."""
    return key_path.with_name(key_path.stem + ".pub.pem")


def trusted_sandbox_keys(paths: Iterable[Path]) -> KeyRing:
    """The trusted sandbox keys (PEM files or folders of them; default folder when none given)."""
    given = list(paths) or [default_trust_dir()]
    missing = [p for p in given if not p.exists()]
    if missing:
        raise InputError(f"trusted sandbox key path not found: {', '.join(map(str, missing))} (give --trust with the "
                         f"sandbox's trace-signing.pub.pem or a folder of such keys, set {TRUST_ENV}, or put the "
                         f"key in {default_trust_dir()})", where="--trust")
    private = [Problem(str(f), "--trust", "is a private key: a trusted sandbox key is its public key "
                       "(trace-signing.pub.pem), given alone or in a folder of public keys, never the sandbox's "
                       "own DATA/keys folder, which holds its private keys")
               for f in _pem_files(given) if _holds_private_key(f)]
    if private:
        raise InputError(private)
    ring = KeyRing.from_paths(given)
    if not len(ring):
        raise InputError(f"no trusted sandbox key in {', '.join(map(str, given))} (give --trust PEM|DIR or set "
                         f"{TRUST_ENV})", where="--trust")
    return ring


def _pem_files(paths: Iterable[Path]) -> list[Path]:
    """The PEM files a ``--trust`` list names: each file, and every ``*.pem`` of each folder (as KeyRing reads them)."""
    return [f for p in paths for f in (sorted(p.glob("*.pem")) if p.is_dir() else [p])]


def _holds_private_key(path: Path) -> bool:
    """Whether ``path`` holds a PEM private key block (unreadable files are left to the key loader to report)."""
    try:
        return b"PRIVATE KEY-----" in path.read_bytes()
    except OSError:
        return False


def agency_signing_key(path: Path) -> SigningKey:
    """The agency's key, created on first use (under a lock, so concurrent deciders share one key). A file that is
    there is only read (written whole, it needs no lock): no ``.lock`` is left beside a path that holds no key."""
    if path.exists() or path.is_symlink():
        return SigningKey.load_or_create(path)
    private_dir(path.parent)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return SigningKey.load_or_create(path)
    finally:
        os.close(fd)


def usable_agency_key(path: Path, option: str = "--agency-key") -> Path:
    """``path`` checked before a decision, nothing written: the key there loads, or one can be created there (a
    decision reads it only to sign a label, once the bundle is verified: a bad key given was found only then, and a
    refused bundle's decision was written without a word about it)."""
    if path.exists():
        SigningKey.load(path)
    else:
        refuse_link_to_nothing(path, "key")
        writable_output(path, option=option)
    return path


RegistryTarget = Path | str | Database  # a SQLite file, a PostgreSQL URL, or a service's open database


def registry_exists(target: RegistryTarget) -> bool:
    """A registry to read from: a SQLite file that exists, or a database (a URL, an open one)."""
    if isinstance(target, Database):
        return target.exists()
    return Database(target).exists()


def file_sha256(path: Path) -> str:
    if not path.is_file():
        raise InputError("bundle not found (or not a file)", file=path)
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(slots=True)
class Outcome:
    """What a decide step did: the decision document, the label (if any), what was recorded, the files written."""

    decision: DecisionDoc
    label: LabelDoc | None        # what the label says (the signed payload)
    recorded: bool                # the submission is in the registry
    created: bool                 # this step wrote a decision (False: decided before, or nothing to record)
    files: list[Path] = field(default_factory=list)
    signed: dict[str, Any] | None = None  # the label file (a JWS)

    @property
    def labelled(self) -> bool:
        return self.label is not None

    @property
    def doc(self) -> dict[str, Any]:
        """The decision document (JSON)."""
        return self.decision.to_json()

    @property
    def exit_code(self) -> int:
        return EXIT[self.decision.outcome]


def _write_json(path: Path, doc: Any) -> Path:
    write_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path


PREFIX = {"refused": "refusal", "pending": "pending", "revoked": "revoked"}


def write_outcome(out: Path, doc: DecisionDoc, signed_label: dict[str, Any] | None) -> list[Path]:
    """``label-<id>.json`` (the signed label, a JWS); ``already-labelled-<submission>.json`` (a run of a version
    that holds a label); or ``refusal-|pending-|revoked-<submission>.json`` and ``.txt``."""
    if signed_label is not None:
        return [_write_json(out / f"label-{doc.label_id}.json", signed_label)]
    if doc.labelled_by:
        return [_write_json(out / f"already-labelled-{doc.submission}.json", doc.to_json())]
    stem = f"{PREFIX[doc.outcome]}-{doc.submission}"
    with output_set(out, (f"{stem}.json", f"{stem}.txt")) as temps:  # the pair, or neither
        _write_json(temps[f"{stem}.json"], doc.to_json())
        write_atomic(temps[f"{stem}.txt"], doc.text())
    return [out / f"{stem}.json", out / f"{stem}.txt"]


def _written(out: Path, outcome: Outcome) -> Outcome:
    """The outcome with its files written (called once the registry's transaction is committed)."""
    outcome.files = write_outcome(out, outcome.decision, outcome.signed)
    return outcome


@dataclass(frozen=True, slots=True)
class WaiverRequest:
    """The agency's explicit decision to waive automated MUST requirements of the run being decided."""

    requirements: tuple[str, ...] = ()
    reason: str = ""
    decider: str = ""

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def waivers(self, catalog: Catalog, facts: Facts, now: dt.datetime) -> dict[str, Waiver]:
        """The waivers to record; InputError (nothing recorded) listing every one the agency may not give."""
        if not self:
            return {}
        if not self.reason.strip():
            raise InputError("a waiver needs a reason (--reason TEXT): it is published in the signed label",
                             where="--reason")
        i = facts.identity
        wave = catalog.wave(i.wave)
        spec = {a.id: a.requirement for a in catalog.specification(i.wave, i.category).requirements}
        problems = waiver_problems(facts, wave, spec, self.requirements)
        if problems:
            raise InputError(problems)
        verdicts = {r.id: r.verdict for r in facts.rows}
        return {rid: Waiver(rid, verdicts[rid], self.reason.strip(), self.decider.strip() or "the agency", iso(now))
                for rid in self.requirements}


def decide_bundle(bundle: Path, catalog: Catalog, keys: KeyRing, registry_path: RegistryTarget, key_path: Path, out: Path,
                  *, now: dt.datetime | None = None, limits: ZipLimits = DEFAULT_LIMITS,
                  waive: WaiverRequest = WaiverRequest(), vendor: str | None = None,
                  same_person: dt.timedelta = SAME_PERSON_PERIOD) -> Outcome:
    """Verify a bundle, then decide on the run it carries (once), write its label or decision into ``out``.

    ``vendor``: the vendor the bundle must be of (the service's signed-in vendor); a run of another vendor,
    as its signed traces say, is refused before anything is recorded. ``same_person``: as :func:`decide_submission`
    (a bundle of a run recorded before is decided again with the reviews recorded since). ``now``: None (the
    default) dates the decision, and the label it issues, holding the registry's write lock (:meth:`Registry.now`):
    after whatever committed while it waited for it (a reinstatement, a revocation).
    """
    given, now = now, now or dt.datetime.now(dt.UTC)
    sha = file_sha256(bundle)
    if registry_exists(registry_path):
        with Registry(registry_path) as registry:
            known = registry.by_bundle(sha)  # these very bytes were received before: the same run
        if known is not None:
            _same_vendor(vendor, known.vendor_id)
            return decide_submission(known.id, catalog, registry_path, key_path, out, now=given, bundle=(bundle.name, sha),
                                     waive=waive, same_person=same_person)
    v = verify_bundle(bundle, catalog, keys, limits)
    if not v.ok:
        d = unverified(v, now)
        doc = decision_doc(d, who_of_manifest(v.manifest), recorded=False, bundle=(bundle.name, sha))
        return _written(out, Outcome(doc, None, False, False))
    facts = Facts.of(v)
    _same_vendor(vendor, facts.identity.vendor_id)
    if not owned_software_id(facts.identity.software_id, facts.identity.vendor_id):
        why = ownership_problem(facts.identity.software_id, facts.identity.vendor_id)
        raise InputError(f"this bundle's run is refused: {why}", where="bundle")
    wave = catalog.wave(facts.identity.wave)
    waivers = waive.waivers(catalog, facts, now)  # refused before the registry is even opened
    with Registry(registry_path) as registry, registry.write():
        now = given or dt.datetime.now(dt.UTC)  # dated holding the lock
        known = registry.find(facts.identity)
        if known is not None:  # the same run, in other bytes: its decision, nothing new
            outcome = _decide_known(registry, known, catalog, key_path, now, (bundle.name, sha), waive, same_person)
        elif (block := registry.blocking_revocation(facts.identity.software_id, facts.identity.version,
                                                    facts.identity.wave)) is not None:
            outcome = _unrecorded(revoked(facts, block, now), (bundle.name, sha))
        else:
            outcome = _first(registry, facts, v.evidence_data, wave, key_path, now, (bundle.name, sha), waivers)
    return _written(out, outcome)


def preview(registry: Registry, s: Submission, catalog: Catalog, now: dt.datetime,
            same_person: dt.timedelta = SAME_PERSON_PERIOD) -> Decision:
    """What deciding a recorded submission would give now: its reviews and the waivers its first decision recorded
    (a preview without them predicts a refusal that the decision then does not make)."""
    facts = registry.facts(s)
    return decide(facts, registry.reviews(s.id), catalog.wave(s.wave), now, registry.waivers(s.id),
                  registry.persons(now, same_person), changes=changes_since_verified(catalog, facts))


def changes_since_verified(catalog: Catalog, facts: Facts) -> tuple[Problem, ...]:
    """How the wave's specification in ``catalog`` differs from the one a recorded run was verified against."""
    spec = catalog.specification(facts.identity.wave, facts.identity.category)
    return specification_changes(facts, {r.id: r.version for r in spec.referentials},
                                 ((a.id, a.level, a.requirement.proof.method) for a in spec.requirements))


def _same_vendor(expected: str | None, actual: str) -> None:
    if expected is not None and expected != actual:
        raise InputError(f"this bundle's run is of vendor {actual!r}, as its signed traces say; you submit for "
                         f"vendor {expected!r}: a vendor submits its own runs only", where="bundle")


def decide_submission(ident: str, catalog: Catalog, registry_path: RegistryTarget, key_path: Path, out: Path, *,
                      now: dt.datetime | None = None, bundle: tuple[str, str] | None = None,
                      waive: WaiverRequest = WaiverRequest(), same_person: dt.timedelta = SAME_PERSON_PERIOD,
                      guard: Callable[[Connection], None] | None = None) -> Outcome:
    """Decide again on a recorded submission (by its id or a label's id) from what the registry holds
    (``same_person``: how long an account and the admin who set its password count as one reviewer; ``guard``: as
    :class:`Registry`'s, checked inside the decision's transaction; ``now``: as :func:`decide_bundle`'s, None dates
    the decision holding the write lock)."""
    if not registry_exists(registry_path):
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=str(registry_path))
    with Registry(registry_path, guard=guard) as registry, registry.write():
        now = now or dt.datetime.now(dt.UTC)  # dated holding the lock
        s = registry.get(ident)
        outcome = _decide_known(registry, s, catalog, key_path, now, bundle or (s.bundle_name, s.bundle_sha256), waive,
                                same_person)
    return _written(out, outcome)


def _first(registry: Registry, facts: Facts, evidence: dict[str, bytes], wave: Wave, key_path: Path,
           now: dt.datetime, bundle: tuple[str, str], waivers: dict[str, Waiver]) -> Outcome:
    """A run decided for the first time (inside the write transaction): recorded, unless its version holds a label."""
    d = decide(facts, {}, wave, now, waivers)
    in_force = registry.label_in_force(facts.identity, now) if d.outcome != "refused" else None
    if in_force is not None:
        return _unrecorded(d, bundle, labelled_by=in_force)
    label = sign_label(d.label_fields(wave, new_label_id()), agency_signing_key(key_path)) \
        if d.outcome == "labelled" else None
    registry.record(d, iso(now), evidence, label)
    registry.add_waivers(d.submission, list(waivers.values()))
    return _recorded(d, label, bundle)


def _decide_known(registry: Registry, s: Submission, catalog: Catalog, key_path: Path, now: dt.datetime,
                  bundle: tuple[str, str], waive: WaiverRequest = WaiverRequest(),
                  same_person: dt.timedelta = SAME_PERSON_PERIOD) -> Outcome:
    """A recorded run (inside the registry's write transaction): its decision, or a new one when it may change.

    A refusal is final; a label in force is returned as it is; a revoked version gets nothing; a pending
    run, or a run whose revoked version was reinstated, is judged again with the reviews and waivers recorded
    since. Waivers are given when a run is first decided or while it is pending, never after a final decision.
    """
    final = s.state == "refused" or (s.state == "labelled" and s.label_id is not None and s.revoked is None)
    if waive and s.state != "pending":
        raise InputError(f"submission {s.id} is {s.state}: a waiver is given when a run is first decided or while it "
                         "awaits reviews, never after a final decision", where="--waive")
    if final:
        return _stored(registry, s, bundle)
    block = registry.blocking_revocation(s.software_id, s.version, s.wave)
    if block is not None:
        d = Decision("revoked", s.id, iso(now), registry.facts(s) if s.identity else None, revoked=block)
        return _unrecorded(d, bundle, recorded=True, who=_who_of_submission(s))
    facts = registry.facts(s)
    wave = catalog.wave(s.wave)
    new = waive.waivers(catalog, facts, now)
    already = sorted(set(new) & set(registry.waivers(s.id)))
    if already:
        raise InputError(f"already waived for {s.id}: {', '.join(already)}", where="--waive")
    registry.add_waivers(s.id, list(new.values()))
    d = decide(facts, registry.reviews(s.id), wave, now, registry.waivers(s.id), registry.persons(now, same_person),
               changes=changes_since_verified(catalog, facts))
    if d.outcome == "pending" or (s.state == "labelled" and d.outcome != "labelled"):
        return _unrecorded(d, bundle, recorded=True)  # nothing changed (or nothing can be issued now)
    in_force = registry.label_in_force(facts.identity, now) if d.outcome == "labelled" else None
    if in_force is not None:
        return _unrecorded(d, bundle, recorded=True, labelled_by=in_force)
    label = sign_label(d.label_fields(wave, new_label_id()), agency_signing_key(key_path)) \
        if d.outcome == "labelled" else None
    registry.redecide(d, label)
    return _recorded(d, label, bundle)


def _who_of_submission(s: Submission) -> dict[str, Any]:
    run = (s.decision.facts or {}).get("run")
    return {"vendor": {"id": s.vendor_id, "name": s.vendor_name},
            "software": {"id": s.software_id, "name": s.software_name, "version": s.version},
            "wave": s.wave, "category": s.category, "run": run}


def _recorded(d: Decision, label: SignedLabel | None, bundle: tuple[str, str]) -> Outcome:
    """A decision this step recorded (and the label it issued)."""
    assert d.facts is not None
    doc = decision_doc(d, who_of_facts(d.facts), recorded=True, bundle=bundle,
                       label_id=label.doc["label_id"] if label else None)
    return Outcome(doc, label.doc if label else None, True, True, signed=label.signed if label else None)


def _unrecorded(d: Decision, bundle: tuple[str, str], *, recorded: bool = False,
                labelled_by: tuple[str, str] | None = None, who: dict[str, Any] | None = None) -> Outcome:
    """A decision that changes nothing in the registry (revoked, already labelled, still pending)."""
    if who is None:
        assert d.facts is not None
        who = who_of_facts(d.facts)
    if labelled_by is not None:  # the version holds a label: this run adds nothing
        d = Decision("labelled", d.submission, d.decided, d.facts, passed=d.passed, reviewed=d.reviewed,
                     warnings=d.warnings)
    doc = decision_doc(d, who, recorded=recorded, bundle=bundle, labelled_by=labelled_by,
                       label_id=labelled_by[0] if labelled_by else None, verified=True)
    return Outcome(doc, None, recorded, False)


def _stored(registry: Registry, s: Submission, bundle: tuple[str, str]) -> Outcome:
    """The decision recorded for a run (refused, or labelled with a label in force): given again, nothing recorded."""
    rec = s.decision
    d = Decision(
        "labelled" if s.state == "labelled" else "refused", s.id, s.decided or s.received,
        registry.facts(s) if s.identity and rec.facts else None,
        reasons=rec.reasons, failed=rec.failed, rejected=rec.rejected, missing_evidence=rec.missing_evidence,
        reviewed=tuple(registry.current_reviews(s.id).values()), warnings=rec.warnings,
        waived=tuple(registry.waivers(s.id).values()))
    who = who_of_facts(d.facts) if d.facts else _who_of_submission(s)
    label = registry.label_doc(s.label_id) if s.label_id else None
    signed = registry.label_signed(s.label_id) if s.label_id else None
    doc = decision_doc(d, who, recorded=True, bundle=bundle, label_id=s.label_id, already=s.decided, verified=True)
    return Outcome(doc, label, True, False, signed=signed)
