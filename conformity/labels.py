"""Labels and revocation lists: build, sign, verify offline, and say whether a label is valid at a time."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from conformity.catalog.schema import schema_problems
from conformity.errors import InputError, SignatureError
from conformity.signing import KeyRing, SigningKey, load_json_file, verify_envelope

LABEL_FORMAT = "usine.label/2"
#: earlier label formats, refused by name (usine.label/1: issued before runs were identities and evidence reviewed)
RETIRED_LABEL_FORMATS = ("usine.label/1",)
REVOCATIONS_FORMAT = "usine.revocations/2"
#: how long a revocation list may be relied on after it is issued (the agency publishes a new one before)
REVOCATIONS_VALIDITY = dt.timedelta(days=1)
ISSUER_NAME = "Agence de labellisation (modèle usine)"


def new_label_id() -> str:
    return "lbl_" + secrets.token_hex(12)


def iso(when: dt.datetime) -> str:
    """An aware datetime as RFC 3339 UTC with seconds (``2027-01-31T12:00:00Z``)."""
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_now() -> str:
    return iso(dt.datetime.now(dt.UTC))


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time (``Z`` or offset) as an aware datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return value


class LabelDoc(TypedDict):
    """What a label says (``usine.label/2``, schema ``label``): the signed payload, kept and passed on as JSON."""

    format: str
    label_id: str
    vendor: dict[str, str]    # id, name
    software: dict[str, str]  # id, name, registration_id
    versions: list[str]
    category: str
    wave: str
    referentials: dict[str, str]
    run: dict[str, Any]       # id, seed, harness, submission, started
    requirements_passed: list[str]
    requirements_reviewed: list[dict[str, Any]]
    requirements_waived: NotRequired[list[dict[str, Any]]]
    issued: str
    expires: str
    bundle_sha256: str
    issuer: dict[str, str]    # name, key_id


@dataclass(frozen=True, slots=True)
class SignedLabel:
    """A label just issued: what it says (``doc``) and the JWS that carries it (``signed``, the label file)."""

    doc: LabelDoc
    signed: dict[str, Any]


def sign_label(fields: dict[str, Any], key: SigningKey, issuer: str = ISSUER_NAME) -> SignedLabel:
    """Complete and sign a label (a JWS, see ``conformity.signing``); InputError if it breaks the label schema."""
    doc = {"format": LABEL_FORMAT, **fields, "issuer": {"name": issuer, "key_id": key.kid}}
    problems = schema_problems("label", doc, "label")
    if problems:
        raise InputError(problems)
    return SignedLabel(cast("LabelDoc", doc), key.sign_document(doc))  # the schema holds it to LabelDoc


@dataclass(frozen=True, slots=True)
class Label:
    """A verified label."""

    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.doc["label_id"])

    @property
    def software_id(self) -> str:
        return str(self.doc["software"]["id"])

    @property
    def vendor_id(self) -> str:
        return str(self.doc["vendor"]["id"])

    @property
    def issued(self) -> dt.datetime:
        return parse_time(self.doc["issued"])

    @property
    def expires_end(self) -> dt.datetime:
        """The first instant the label is no longer valid (end of its expiry day, UTC)."""
        day = dt.date.fromisoformat(self.doc["expires"])
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def covers(self, version: str) -> bool:
        return version in self.doc["versions"]

    def valid_at(self, when: dt.datetime, revoked_at: dt.datetime | None = None) -> str | None:
        """None if valid at ``when``; else why not: not-yet-valid, expired, revoked."""
        if when < self.issued:
            return "not-yet-valid"
        if when >= self.expires_end:
            return "expired"
        if revoked_at is not None and when >= revoked_at:
            return "revoked"
        return None


def verify_label(signed: Any, keys: KeyRing, *, source: str = "label") -> Label:
    """Signature, then format and schema of a signed label; SignatureError / InputError naming what is wrong."""
    verified = verify_envelope(signed, keys, source=source)
    doc = verified.payload
    if doc.get("format") in RETIRED_LABEL_FORMATS:
        raise InputError(f"label format {doc['format']} is no longer accepted: it was issued before a label named the "
                         f"run it rests on and its reviewed evidence; ask the agency for a {LABEL_FORMAT} label",
                         file=source, where="format")
    if doc.get("format") != LABEL_FORMAT:
        raise InputError(f"not a label (format {doc.get('format')!r}, expected {LABEL_FORMAT})", file=source, where="format")
    problems = schema_problems("label", doc, source)
    if problems:
        raise InputError(problems)
    if doc["issuer"]["key_id"] != verified.kid:
        raise SignatureError("issuer.key_id does not match the signing key", file=source, where="issuer.key_id")
    return Label(doc)


def load_label(path: str | Path, keys: KeyRing) -> Label:
    return verify_label(load_json_file(path), keys, source=str(path))


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked label and what it revokes: a software version in a wave."""

    label_id: str
    software_id: str
    version: str
    wave: str
    revoked: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class RevocationList:
    """A verified revocation list: when it was issued, until when it may be relied on, what it revokes."""

    issued: dt.datetime
    next_update: dt.datetime
    revocations: tuple[Revocation, ...]

    def revoked_at(self, label_id: str) -> dt.datetime | None:
        return next((r.revoked for r in self.revocations if r.label_id == label_id), None)

    def by_label(self) -> dict[str, dt.datetime]:
        return {r.label_id: r.revoked for r in self.revocations}

    def revoked_for(self, label: Label) -> dt.datetime | None:
        """When ``label`` stopped being valid by a revocation, if it did: its own, or that of a version it covers in
        its wave (another label's) made after its issue. A version revoked in a wave gets no label until the agency
        reinstates it; the label it issues then is not touched by the revocation before it, even in the same second
        (the registry revokes every label in force for the version at once, each listed: this rule is the backstop
        for a label it did not know of)."""
        issued, wave = label.issued, label.doc["wave"]
        times = [r.revoked for r in self.revocations if r.label_id == label.id or (
            r.software_id == label.software_id and r.wave == wave and label.covers(r.version) and r.revoked > issued)]
        return min(times, default=None)

    def stale_at(self, when: dt.datetime) -> bool:
        """True once ``next_update`` has passed: a newer list must exist, this one is not to be relied on."""
        return when >= self.next_update


def sign_revocations(revocations: list[dict[str, Any]], key: SigningKey, *, now: dt.datetime | None = None,
                     validity: dt.timedelta = REVOCATIONS_VALIDITY, issuer: str = ISSUER_NAME) -> dict[str, Any]:
    """The signed revocation list, issued ``now`` and to be replaced by ``now + validity`` (``next_update``)."""
    now = now or dt.datetime.now(dt.UTC)
    doc = {"format": REVOCATIONS_FORMAT, "issued": iso(now), "next_update": iso(now + validity),
           "issuer": {"name": issuer, "key_id": key.kid},
           "revocations": sorted(revocations, key=lambda r: (r["label_id"], r["version"]))}
    problems = schema_problems("revocations", doc, "revocations")
    if problems:
        raise InputError(problems)
    return key.sign_document(doc)


def verify_revocations(signed: Any, keys: KeyRing, *, source: str = "revocations") -> RevocationList:
    """A signed revocation list, verified (signature, format, schema, issuer key)."""
    verified = verify_envelope(signed, keys, source=source)
    doc = verified.payload
    if doc.get("format") != REVOCATIONS_FORMAT:
        raise InputError(f"not a revocation list (format {doc.get('format')!r}, expected {REVOCATIONS_FORMAT})",
                         file=source, where="format")
    problems = schema_problems("revocations", doc, source)
    if problems:
        raise InputError(problems)
    if doc["issuer"]["key_id"] != verified.kid:
        raise SignatureError("issuer.key_id does not match the signing key", file=source, where="issuer.key_id")
    issued, next_update = parse_time(doc["issued"]), parse_time(doc["next_update"])
    if next_update <= issued:
        raise InputError("next_update is not after issued", file=source, where="next_update")
    return RevocationList(issued, next_update, tuple(
        Revocation(r["label_id"], r["software_id"], r["version"], r["wave"], parse_time(r["revoked"]), r["reason"])
        for r in doc["revocations"]))


def load_revocations(path: str | Path, keys: KeyRing) -> RevocationList:
    return verify_revocations(load_json_file(path), keys, source=str(path))
