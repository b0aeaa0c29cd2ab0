"""Canonical JSON and Ed25519 signatures: the one place where usine signs and verifies.

A signed document is a JSON object with a ``signature`` member::

    {..., "signature": {"alg": "Ed25519", "kid": "<sha256 of raw public key, hex>", "value": "<base64url>"}}

The signature covers the RFC 8785 canonical JSON of the object without its ``signature``
member, so any change to any other field breaks it. Keys are identified by fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformity.errors import SignatureError

ALG = "Ed25519"


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical bytes of a JSON value."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise SignatureError(f"value cannot be canonicalised as JSON: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Key id: SHA-256 of the raw 32-byte public key, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A trusted Ed25519 public key and its fingerprint."""

    public_key: Ed25519PublicKey

    @property
    def kid(self) -> str:
        return fingerprint(self.public_key)

    def pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def raw_b64u(self) -> str:
        return _b64u(self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def to_jwk(self) -> dict[str, str]:
        """The key as an OKP JWK (RFC 8037), with ``kid`` = fingerprint."""
        return {"kty": "OKP", "crv": "Ed25519", "x": self.raw_b64u(), "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    @classmethod
    def from_pem(cls, data: bytes | str, *, source: str = "key") -> VerifyKey:
        if isinstance(data, str):
            data = data.encode("ascii", "replace")
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise SignatureError(f"not a PEM public key: {exc}", file=source) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError("public key is not Ed25519", file=source)
        return cls(key)

    @classmethod
    def from_file(cls, path: str | Path) -> VerifyKey:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise SignatureError(f"cannot read public key: {exc.strerror}", file=p) from exc
        return cls.from_pem(data, source=str(p))

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], *, source: str = "jwk") -> VerifyKey:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
            raise SignatureError("JWK is not an Ed25519 OKP key", file=source)
        try:
            key = Ed25519PublicKey.from_public_bytes(_unb64u(jwk["x"]))
        except ValueError as exc:
            raise SignatureError(f"bad Ed25519 JWK: {exc}", file=source) from exc
        return cls(key)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key that signs usine documents."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from a 32-byte seed (tests and reproducible demos only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.private_key.public_key())

    @property
    def kid(self) -> str:
        return self.verify_key.kid

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def save(self, path: str | Path) -> None:
        """Write the private key (mode 0600) and its public key beside it (``.pub.pem``)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(self.pem())
        tmp.chmod(0o600)
        tmp.replace(p)
        p.with_name(p.stem + ".pub.pem").write_text(self.verify_key.pem())

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        p = Path(path)
        try:
            key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise SignatureError(f"cannot load private key: {exc}", file=p) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError("private key is not Ed25519", file=p)
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str | Path) -> SigningKey:
        p = Path(path)
        if p.exists():
            return cls.load(p)
        key = cls.generate()
        key.save(p)
        return key

    def sign_bytes(self, data: bytes) -> str:
        return _b64u(self.private_key.sign(data))

    def sign_document(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of ``doc`` with a ``signature`` over its canonical JSON."""
        body = {k: v for k, v in doc.items() if k != "signature"}
        sig = {"alg": ALG, "kid": self.kid, "value": self.sign_bytes(canonical_json(body))}
        return {**body, "signature": sig}


class KeyRing:
    """Trusted public keys by fingerprint."""

    def __init__(self, keys: Iterable[VerifyKey] = ()):
        self._keys: dict[str, VerifyKey] = {k.kid: k for k in keys}

    def add(self, key: VerifyKey) -> None:
        self._keys[key.kid] = key

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, kid: str) -> VerifyKey | None:
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return sorted(self._keys)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> KeyRing:
        """Load PEM public keys from files, or every ``*.pem`` in a folder."""
        ring = cls()
        for path in paths:
            p = Path(path)
            files = sorted(p.glob("*.pem")) if p.is_dir() else [p]
            for f in files:
                ring.add(VerifyKey.from_file(f))
        return ring


def verify_document(doc: Any, keys: KeyRing, *, source: str = "document") -> dict[str, Any]:
    """Check a signed document against trusted keys; return it without its signature.

    Raises SignatureError naming what is wrong: not an object, no signature, unknown
    algorithm, untrusted key id, or a signature that does not match the content.
    """
    if not isinstance(doc, dict):
        raise SignatureError("signed document is not a JSON object", file=source)
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        raise SignatureError("document is not signed (no 'signature' object)", file=source, where="signature")
    if sig.get("alg") != ALG:
        raise SignatureError(f"unsupported signature algorithm {sig.get('alg')!r} (expected {ALG})",
                             file=source, where="signature.alg")
    kid, value = sig.get("kid"), sig.get("value")
    if not isinstance(kid, str) or not isinstance(value, str):
        raise SignatureError("signature needs string 'kid' and 'value'", file=source, where="signature")
    key = keys.get(kid)
    if key is None:
        raise SignatureError(f"signed by an untrusted key {kid[:16]}… (trusted: "
                             f"{', '.join(k[:16] + '…' for k in keys.kids()) or 'none'})",
                             file=source, where="signature.kid")
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        key.public_key.verify(_unb64u(value), canonical_json(body))
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature does not match the content (edited after signing?)",
                             file=source, where="signature.value") from exc
    return body


def load_json_file(path: str | Path) -> Any:
    """Read a JSON file, with errors naming the file, line and column."""
    from conformity.errors import InputError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=p) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason}", file=p) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=p, where=f"line {exc.lineno}, column {exc.colno}") from exc
