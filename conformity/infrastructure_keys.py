"""The infrastructure keys document: which Ed25519 keys sign event segments, and the sources each vouches for.

A JWK Set (RFC 7517) with two extra members per key, ``sources`` and ``pem`` (schema
``conformity/schemas/infrastructure-keys.schema.json``)::

    {"format": "usine.infrastructure-keys/1", "name": "...",
     "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "...", "kid": "<RFC 7638 thumbprint>",
               "alg": "EdDSA", "use": "sig", "pem": "-----BEGIN PUBLIC KEY-----...",
               "sources": ["urn:usine:sandbox:dmp", "urn:usine:sandbox:mss"]}]}

The infrastructure publishes it (the sandbox at ``/.well-known/usine-infrastructure-keys``); the
payment agency keeps the copy it trusts and gives it to ``usine pay run --infrastructure-keys``.
A ``kid`` that is not the key's thumbprint, or a ``pem`` that is another key, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity import jsonio
from conformity.catalog.schema import schema_problems
from conformity.errors import InputError, Problem, SignatureError
from conformity.signing import KeyRing, VerifyKey

KEYS_FORMAT = "usine.infrastructure-keys/1"
SCHEMA = "infrastructure-keys"
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class InfrastructureKeys:
    """Trusted infrastructure keys (a key ring) and the event sources each key id vouches for."""

    ring: KeyRing
    sources: dict[str, frozenset[str]]

    def sources_of(self, kid: str) -> frozenset[str]:
        return self.sources.get(kid, frozenset())


def keys_document(entries: Iterable[tuple[VerifyKey, Iterable[str]]], name: str = "") -> dict[str, Any]:
    """The document that publishes ``(key, sources)`` pairs (what the sandbox serves and writes)."""
    doc: dict[str, Any] = {"format": KEYS_FORMAT}
    if name:
        doc["name"] = name
    doc["keys"] = [key.to_jwk() | {"pem": key.pem(), "sources": sorted(set(sources))} for key, sources in entries]
    return doc


def parse_keys(doc: Any, *, source: str = "infrastructure keys") -> InfrastructureKeys:
    """The trusted keys of an infrastructure keys document; InputError listing every problem."""
    if not isinstance(doc, dict) or doc.get("format") != KEYS_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"not an infrastructure keys document (format {got!r}, expected {KEYS_FORMAT})",
                         file=source, where="format")
    problems = schema_problems(SCHEMA, doc, source)
    if problems:
        raise InputError(problems)
    ring, sources = KeyRing(), {}
    for i, jwk in enumerate(doc["keys"]):
        where = f"keys[{i}]"
        try:
            key = VerifyKey.from_jwk(jwk, source=source)
        except SignatureError as exc:
            problems += [Problem(source, where, p.message) for p in exc.problems]
            continue
        if jwk["kid"] != key.kid:
            problems.append(Problem(source, f"{where}.kid", f"is not the RFC 7638 thumbprint of the key ({key.kid})"))
            continue
        if "pem" in jwk:
            try:
                same = VerifyKey.from_pem(jwk["pem"], source=source).kid == key.kid
            except SignatureError:
                same = False
            if not same:
                problems.append(Problem(source, f"{where}.pem", "is not the same key as x"))
                continue
        if key.kid in sources:
            problems.append(Problem(source, f"{where}.kid", "the same key is listed twice"))
            continue
        ring.add(key)
        sources[key.kid] = frozenset(jwk["sources"])
    if problems:
        raise InputError(problems)
    return InfrastructureKeys(ring, sources)


def load_keys(path: str | Path) -> InfrastructureKeys:
    """Read and check an infrastructure keys file (strict JSON, bounded); a PEM key given instead is said to be one,
    with what the file is."""
    try:
        head = Path(path).read_bytes()[:64]
    except OSError:
        head = b""  # unreadable: the JSON reader says why
    if head.lstrip().startswith(b"-----BEGIN"):
        raise InputError(f"is a PEM key, not an infrastructure keys file: that file is JSON ({KEYS_FORMAT}) listing "
                         "the event sources' public keys as JWKs; the sandbox writes its own in its state folder "
                         "(usine sandbox serve prints where)", file=str(path))
    return parse_keys(jsonio.load_file(path, max_bytes=MAX_FILE_BYTES), source=str(path))
