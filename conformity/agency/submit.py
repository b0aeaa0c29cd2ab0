"""The agency's decide step end to end: verify, decide, record once in the registry, write the label or refusal.

A bundle whose evidence does not verify is refused without being recorded: its manifest's claims
(vendor, software) are unproven, and the registry and the public progress only count verified evidence.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.agency.bundlezip import DEFAULT_LIMITS, ZipLimits
from conformity.agency.decision import decide, decision_doc, refusal_text
from conformity.agency.registry import Registry, iso
from conformity.agency.verify import verify_bundle
from conformity.catalog import Catalog
from conformity.files import private_dir, write_atomic
from conformity.errors import InputError
from conformity.labels import SignedLabel, new_label_id, sign_label
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
        raise InputError(f"trusted sandbox key path not found: {', '.join(map(str, missing))}", where="--trust")
    ring = KeyRing.from_paths(given)
    if not len(ring):
        raise InputError(f"no trusted sandbox key in {', '.join(map(str, given))} (give --trust PEM|DIR or set "
                         f"{TRUST_ENV})", where="--trust")
    return ring


def agency_signing_key(path: Path) -> SigningKey:
    """The agency's key, created on first use (under a lock, so concurrent deciders share one key)."""
    private_dir(path.parent)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return SigningKey.load_or_create(path)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    if not path.is_file():
        raise InputError("bundle not found (or not a file)", file=path)
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(slots=True)
class Outcome:
    """What ``decide_bundle`` did: the decision document, the label (if any), the files written."""

    doc: dict[str, Any]
    label: dict[str, Any] | None  # what the label says (the signed payload)
    recorded: bool
    created: bool
    files: list[Path] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return self.label is not None


def _write_json(path: Path, doc: Any) -> Path:
    write_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def write_outcome(out: Path, doc: dict[str, Any], signed_label: dict[str, Any] | None) -> list[Path]:
    """``label-<id>.json`` (the signed label, a JWS), or ``refusal-<submission>.json`` and ``.txt``."""
    if signed_label is not None:
        return [_write_json(out / f"label-{doc['label_id']}.json", signed_label)]
    stem = out / f"refusal-{doc['submission']}"
    paths = [_write_json(stem.with_suffix(".json"), doc)]
    write_atomic(stem.with_suffix(".txt"), refusal_text(doc))
    return paths + [stem.with_suffix(".txt")]


def decide_bundle(bundle: Path, catalog: Catalog, keys: KeyRing, registry_path: Path, key_path: Path, out: Path,
                  *, now: dt.datetime | None = None, limits: ZipLimits = DEFAULT_LIMITS) -> Outcome:
    """Verify and decide a bundle, record it once, write its label or refusal into ``out``."""
    received = iso(now or dt.datetime.now(dt.UTC))
    sha = file_sha256(bundle)
    if registry_path.exists():
        with Registry(registry_path) as registry:
            known = registry.by_bundle(sha)
            if known is not None:  # decided before: the same decision, never a second label
                return _already(out, known.id, known.decision, registry)
    v = verify_bundle(bundle, catalog, keys, limits)
    wave = catalog.waves.get(v.manifest["wave"]) if v.manifest else None
    d = decide(v, wave, now or dt.datetime.now(dt.UTC))
    if not v.ok:
        doc = decision_doc(d, recorded=False)
        return Outcome(doc, None, False, False, write_outcome(out, doc, None))
    assert wave is not None

    def issue() -> SignedLabel:
        return sign_label(d.label_fields(wave, new_label_id()), agency_signing_key(key_path))

    with Registry(registry_path) as registry:
        rec = registry.record(d, received, issue)
        if not rec.created:
            return _already(out, rec.submission.id, rec.submission.decision, registry)
        signed = registry.label_signed(rec.label["label_id"]) if rec.label else None
    doc = decision_doc(d, recorded=True, label_id=rec.label["label_id"] if rec.label else None)
    return Outcome(doc, rec.label, True, True, write_outcome(out, doc, signed))


def _already(out: Path, sub_id: str, stored: dict[str, Any], registry: Registry) -> Outcome:
    """The outcome of a bundle decided before (its label file written again, nothing recorded)."""
    s = registry.get(sub_id)
    label = registry.label_doc(s.label_id) if s.label_id else None
    signed = registry.label_signed(s.label_id) if s.label_id else None
    doc = {"format": "usine.decision/1", "outcome": s.state, "submission": s.id, "recorded": True,
           "already_decided": s.decided, "bundle": {"name": s.bundle_name, "sha256": s.bundle_sha256},
           "verified": True, "decided": s.decided,
           "vendor": {"id": s.vendor_id, "name": s.vendor_name},
           "software": {"id": s.software_id, "name": s.software_name, "version": s.version},
           "wave": s.wave, "category": s.category,
           "reasons": [{"file": f, "where": w, "message": m} for f, w, m in stored.get("reasons", [])],
           "failed_requirements": stored.get("failed", []), "pending_reviews": stored.get("pending_reviews", []),
           "warnings": stored.get("warnings", [])}
    if label:
        doc["label_id"] = label["label_id"]
    return Outcome(doc, label, True, False, write_outcome(out, doc, signed))

