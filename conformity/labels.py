"""Labels and revocation lists: build, sign, verify offline, and say whether a label is valid at a time."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.catalog.schema import schema_problems
from conformity.errors import InputError, SignatureError
from conformity.signing import KeyRing, SigningKey, load_json_file, verify_document

LABEL_FORMAT = "usine.label/1"
REVOCATIONS_FORMAT = "usine.revocations/1"
ISSUER_NAME = "Agence de labellisation (modèle usine)"


def new_label_id() -> str:
    return "lbl_" + secrets.token_hex(12)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time (``Z`` or offset) as an aware datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return value


def sign_label(fields: dict[str, Any], key: SigningKey, issuer: str = ISSUER_NAME) -> dict[str, Any]:
    """Complete and sign a label; raises InputError if the result does not match the label schema."""
    doc = {"format": LABEL_FORMAT, **fields, "issuer": {"name": issuer, "key_id": key.kid}}
    signed = key.sign_document(doc)
    problems = schema_problems("label", signed, "label")
    if problems:
        raise InputError(problems)
    return signed


@dataclass(frozen=True, slots=True)
class Label:
    """A verified label."""

    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return self.doc["label_id"]

    @property
    def software_id(self) -> str:
        return self.doc["software"]["id"]

    @property
    def vendor_id(self) -> str:
        return self.doc["vendor"]["id"]

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


def verify_label(doc: Any, keys: KeyRing, *, source: str = "label") -> Label:
    """Schema and signature of a label; raises SignatureError / InputError naming what is wrong."""
    if not isinstance(doc, dict):
        raise InputError("a label is a JSON object", file=source)
    if doc.get("format") != LABEL_FORMAT:
        raise InputError(f"not a label (format {doc.get('format')!r}, expected {LABEL_FORMAT})", file=source, where="format")
    problems = schema_problems("label", doc, source)
    if problems:
        raise InputError(problems)
    verify_document(doc, keys, source=source)
    if doc["issuer"]["key_id"] != doc["signature"]["kid"]:
        raise SignatureError("issuer.key_id does not match the signing key", file=source, where="issuer.key_id")
    return Label(doc)


def load_label(path: str | Path, keys: KeyRing) -> Label:
    return verify_label(load_json_file(path), keys, source=str(path))


def sign_revocations(revocations: list[dict[str, Any]], key: SigningKey, issuer: str = ISSUER_NAME) -> dict[str, Any]:
    doc = {"format": REVOCATIONS_FORMAT, "issued": utc_now(), "issuer": {"name": issuer, "key_id": key.kid},
           "revocations": sorted(revocations, key=lambda r: r["label_id"])}
    return key.sign_document(doc)


def verify_revocations(doc: Any, keys: KeyRing, *, source: str = "revocations") -> dict[str, dt.datetime]:
    """label_id → revocation time, from a signed revocation list."""
    if not isinstance(doc, dict) or doc.get("format") != REVOCATIONS_FORMAT:
        raise InputError(f"not a revocation list (expected format {REVOCATIONS_FORMAT})", file=source, where="format")
    problems = schema_problems("revocations", doc, source)
    if problems:
        raise InputError(problems)
    verify_document(doc, keys, source=source)
    return {r["label_id"]: parse_time(r["revoked"]) for r in doc["revocations"]}
