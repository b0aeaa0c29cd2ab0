"""The labels a payment run trusts: every label file of a folder, verified, indexed, with the revocation list.

A label that does not verify (forged, unsigned, signed by an unknown key, not a label) is kept aside
as a refusal (``label-invalid``) with what it claims to cover, so that events of that software say
``label-invalid`` rather than ``no-label``. A ``revocations.json`` in the folder must verify, or the
run stops: paying without knowing which labels are revoked is not safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.errors import InputError, Problem
from conformity.labels import Label, verify_label, verify_revocations
from conformity.payments import reasons
from conformity.payments.envelope import to_us
from conformity.signing import KeyRing, load_json_file, unverified_payload

REVOCATIONS_FILE = "revocations.json"
LabelKey = tuple[str, str, str]  # (software id, wave, category)

_VALIDITY_REASON = {"revoked": reasons.LABEL_REVOKED, "expired": reasons.LABEL_EXPIRED,
                    "not-yet-valid": reasons.LABEL_NOT_YET_VALID}
_PRIORITY = (reasons.LABEL_REVOKED, reasons.LABEL_EXPIRED, reasons.LABEL_NOT_YET_VALID)


@dataclass(frozen=True, slots=True)
class LabelWindow:
    """A verified label with its validity as microseconds (issued, end of expiry, revocation)."""

    label: Label
    issued_us: int
    end_us: int
    revoked_us: int | None


@dataclass(slots=True)
class LabelBook:
    """Verified labels by (software, wave, category); refused label files; revocations."""

    valid: dict[LabelKey, list[LabelWindow]] = field(default_factory=dict)
    claimed_by_invalid: set[LabelKey] = field(default_factory=set)
    refused: list[Problem] = field(default_factory=list)
    revocations: dict[str, dt.datetime] = field(default_factory=dict)
    files: int = 0

    def labels(self) -> Iterable[Label]:
        for windows in self.valid.values():
            for w in windows:
                yield w.label

    def verdict(self, data: dict[str, Any], time_us: int) -> tuple[str | None, Label | None]:
        """(None, the label) when a label covers the event at its time; else (reason code, None)."""
        software = data["software"]
        key = (software["id"], data["wave"], data["category"])
        candidates = [w for w in self.valid.get(key, ()) if w.label.vendor_id == data["vendor_id"]]
        if not candidates:
            return (reasons.LABEL_INVALID if key in self.claimed_by_invalid else reasons.NO_LABEL), None
        covering = [w for w in candidates if w.label.covers(software["version"])]
        if not covering:
            return reasons.VERSION_NOT_COVERED, None
        found: set[str] = set()
        for w in covering:
            if time_us < w.issued_us:
                found.add(reasons.LABEL_NOT_YET_VALID)
            elif time_us >= w.end_us:
                found.add(reasons.LABEL_EXPIRED)
            elif w.revoked_us is not None and time_us >= w.revoked_us:
                found.add(reasons.LABEL_REVOKED)
            else:
                return None, w.label
        return next(r for r in _PRIORITY if r in found), None


def _claim(signed: Any) -> LabelKey | None:
    """What an unverified label (a JWS that does not verify, or a bare unsigned document) claims to cover."""
    try:
        doc = unverified_payload(signed)
    except InputError:
        doc = signed
    if not isinstance(doc, dict):
        return None
    software, wave, category = doc.get("software"), doc.get("wave"), doc.get("category")
    if isinstance(software, dict) and isinstance(software.get("id"), str) and isinstance(wave, str) \
            and isinstance(category, str):
        return (software["id"], wave, category)
    return None


def load_labelbook(folder: Path, keys: KeyRing) -> LabelBook:
    """Every ``*.json`` under ``folder`` (``revocations.json`` aside) verified against the agency's keys."""
    if not folder.is_dir():
        raise InputError("labels folder not found", file=folder)
    book = LabelBook()
    revocations_path = folder / REVOCATIONS_FILE
    if revocations_path.exists():
        book.revocations = verify_revocations(load_json_file(revocations_path), keys,
                                              source=str(revocations_path)).by_label()
    for path in sorted(folder.rglob("*.json")):
        if path == revocations_path or not path.is_file():
            continue
        book.files += 1
        doc: Any = None
        try:
            doc = load_json_file(path)
            label = verify_label(doc, keys, source=str(path))
        except InputError as exc:
            book.refused.append(Problem(str(path), "", "; ".join(p.message if not p.where else f"{p.where}: {p.message}"
                                                                  for p in exc.problems)))
            claim = _claim(doc)
            if claim is not None:
                book.claimed_by_invalid.add(claim)
            continue
        revoked = book.revocations.get(label.id)
        window = LabelWindow(label, to_us(label.issued), to_us(label.expires_end),
                             to_us(revoked) if revoked is not None else None)
        key = (label.software_id, label.doc["wave"], label.doc["category"])
        book.valid.setdefault(key, []).append(window)
    for windows in book.valid.values():
        windows.sort(key=lambda w: w.label.id)
    return book
