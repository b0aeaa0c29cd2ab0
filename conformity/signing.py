"""Signatures: the one place where usine signs and verifies, as JWS (RFC 7515) with Ed25519.

Every signed artefact (trace, label, revocation list, registry export, event segment manifest) is a
JWS in the flattened JSON serialization (RFC 7515 §7.2.2)::

    {"protected": BASE64URL({"alg": "EdDSA", "kid": KID, "typ": "JOSE+JSON"}),
     "payload":   BASE64URL(the document: RFC 8785 canonical JSON, UTF-8),
     "signature": BASE64URL(Ed25519 over ASCII(protected "." payload))}

``alg`` is ``EdDSA`` with an Ed25519 key (RFC 8037; ``Ed25519`` from RFC 9864 is accepted too) and
``kid`` is the RFC 7638 thumbprint of the public key as an OKP JWK. What a reader relies on is the
verified payload, never a copy beside it: a third party verifies a file with any JOSE library (the
README shows it in a few lines of joserfc) and reads the JSON document it returns. Documents in
the pre-JWS usine envelope (a ``signature`` member holding ``{"alg": "Ed25519", ...}``) are refused
with a message that says so.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import OKPKey
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from conformity import jsonio
from conformity.errors import InputError, SignatureError
from conformity.files import private_dir, refuse_link_to_nothing, write_atomic, write_private

#: the largest payload usine signs or verifies (traces of long scenarios are megabytes; joserfc stops at 128 kB)
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024

ALG = "EdDSA"
ACCEPTED_ALGS = ("EdDSA", "Ed25519")
TYP = "JOSE+JSON"
MEMBERS = frozenset({"protected", "payload", "signature"})
#: what usine puts in a protected header, and all it accepts there (``typ`` may be left out)
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical bytes of a JSON value."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise SignatureError(f"value cannot be canonicalised as JSON: {exc}") from exc


#: the integers RFC 8785 (I-JSON) can represent exactly: ±(2**53 - 1)
_JCS_INT = (1 << 53) - 1


def require_canonicalisable(obj: Any) -> None:
    """Raise SignatureError when :func:`canonical_json` would (NaN or infinity, an integer beyond 2**53 - 1, a
    string with a lone surrogate, a key that is not a string, a type JSON has not), without building the bytes:
    a walk in C-speed steps for values only checked, never signed, here (a trace's recorded bodies)."""
    stack = [obj]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            if node.isascii():  # no surrogate in it (constant time): not copied into UTF-8 bytes only to find none
                continue
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SignatureError(f"value cannot be canonicalised as JSON: {exc}") from None
        elif kind is dict:
            for key, value in node.items():
                if type(key) is not str:
                    raise SignatureError("value cannot be canonicalised as JSON: object keys must be strings")
                stack.append(key)
                stack.append(value)
        elif kind is list or kind is tuple:
            stack.extend(node)
        elif kind is bool or node is None:
            continue
        elif kind is int:
            if not -_JCS_INT <= node <= _JCS_INT:
                raise SignatureError(f"value cannot be canonicalised as JSON: integer {node} out of range")
        elif kind is float:
            if node != node or node in (float("inf"), float("-inf")):
                raise SignatureError(f"value cannot be canonicalised as JSON: {node}")
        else:
            canonical_json(node)  # anything else (a subclass): as the canonicaliser itself says


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64u(data: bytes) -> str:
    return urlsafe_b64encode(data).decode("ascii")


def _jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64u(_raw(public_key))}


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """Key id: the RFC 7638 JWK thumbprint (SHA-256, base64url) of the key as an OKP JWK."""
    return _thumbprint(_raw(public_key))


@functools.lru_cache(maxsize=1024)
def _thumbprint(raw: bytes) -> str:
    """The thumbprint of a raw Ed25519 public key (computed once per key: every signature names its kid)."""
    return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": _b64u(raw)}).thumbprint()


def quiet_registry(*algs: str) -> jws.JWSRegistry:
    """A JWS registry allowing ``algs`` only, without joserfc's security warning on any of them: for an algorithm used
    on purpose (usine's ``EdDSA``; the sandbox's forged tokens, ``alg: none`` among them), said here once.

    Muting the warning around each call with :func:`warnings.catch_warnings` changes the process's filters, which is
    not thread-safe: a signature made while another thread left its own block printed the warning (harness runs, where
    scenario threads and the sandbox sign and verify at once), and a filter could outlive its block."""
    registry = _Registry(algorithms=list(algs))
    registry.algorithms = _quiet_algorithms(algs)
    return registry


class _Registry(jws.JWSRegistry):
    max_payload_length = MAX_PAYLOAD_BYTES


@functools.cache
def _quiet_algorithms(algs: tuple[str, ...]) -> dict[str, Any]:
    """joserfc's JWS algorithms, those of ``algs`` copied without their ``security_warning`` (RFC 9864 deprecates the
    name ``EdDSA`` for ``Ed25519``; usine signs with ``EdDSA``, the widest supported, and accepts both)."""
    out = dict(jws.JWSRegistry.algorithms)
    for name in algs:
        if name in out:
            quiet = copy.copy(out[name])
            quiet.security_warning = None
            out[name] = quiet
    return out


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A trusted Ed25519 public key and its RFC 7638 thumbprint."""

    public_key: Ed25519PublicKey

    @property
    def kid(self) -> str:
        return thumbprint(self.public_key)

    def pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def okp(self) -> OKPKey:
        jwk: dict[str, str | list[str]] = {**_jwk(self.public_key)}
        return OKPKey.import_key(jwk)

    def to_jwk(self) -> dict[str, str]:
        """The key as an OKP JWK (RFC 8037), with ``kid`` = its RFC 7638 thumbprint."""
        return {**_jwk(self.public_key), "kid": self.kid, "alg": ALG, "use": "sig"}

    @classmethod
    def from_pem(cls, data: bytes | str, *, source: str = "key") -> VerifyKey:
        if isinstance(data, str):
            data = data.encode("ascii", "replace")
        if b"PRIVATE KEY-----" in data:  # never read as one: a public key is what is to be given
            raise SignatureError("is a private key, not the public key to verify with: give its .pub.pem (which the "
                                 "command that made the pair wrote beside it), and keep the private key where it was",
                                 file=source)
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
            key = Ed25519PublicKey.from_public_bytes(urlsafe_b64decode(jwk["x"].encode("ascii")))
        except (ValueError, UnicodeEncodeError) as exc:
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

    def _okp(self) -> OKPKey:
        return OKPKey.import_key(self.pem())

    def save(self, path: str | Path) -> None:
        """Write the public key (``.pub.pem``), then the private key (created 0600, never readable by others), each
        whole or not at all: a process stopped between the two leaves no private key, so ``load_or_create`` makes a
        new pair rather than keep a private key whose public half is missing."""
        p = Path(path)
        private_dir(p.parent)
        self._save_public(p)
        write_private(p, self.pem())

    def _save_public(self, path: Path) -> None:
        write_atomic(path.with_name(path.stem + ".pub.pem"), self.verify_key.pem(), shared=True)

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
            key = cls.load(p)
            public = p.with_name(p.stem + ".pub.pem")
            try:
                current = public.read_text(encoding="ascii")
            except (OSError, UnicodeError):
                current = None
            if current != key.verify_key.pem():  # missing or torn (written by a version that wrote it last)
                try:
                    key._save_public(p)
                except OSError:  # a read-only key folder: the private key is all that is needed here
                    pass
            return key
        refuse_link_to_nothing(p, "key")
        key = cls.generate()
        key.save(p)
        return key

    def sign_document(self, doc: Mapping[str, Any]) -> dict[str, str]:
        """``doc`` signed as a flattened JWS JSON object whose payload is its RFC 8785 canonical JSON."""
        header = {"alg": ALG, "kid": self.kid, "typ": TYP}
        signed = jws.serialize_json({"protected": header}, canonical_json(dict(doc)), self._okp(),
                                    registry=quiet_registry(ALG))
        return {"protected": str(signed["protected"]), "payload": str(signed["payload"]),
                "signature": str(signed["signature"])}


class KeyRing:
    """Trusted public keys by key id (RFC 7638 thumbprint)."""

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


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified signed document: its payload and the id of the key that signed it."""

    payload: dict[str, Any]
    kid: str


def _header(envelope: Mapping[str, Any], source: str) -> dict[str, Any]:
    try:
        raw = urlsafe_b64decode(str(envelope["protected"]).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SignatureError(f"protected header is not base64url: {exc}", file=source, where="protected") from exc
    header = jsonio.loads(raw, source=f"{source} (protected header)", max_depth=4)
    if not isinstance(header, dict):
        raise SignatureError("protected header is not a JSON object", file=source, where="protected")
    return header


def _envelope_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "a signed document is a JWS JSON object"
    sig = doc.get("signature")
    if isinstance(sig, dict) and "payload" not in doc:
        return ("signed in the old usine envelope (a 'signature' object over the document); usine now reads "
                "JWS (RFC 7515) only: have it signed again by a current usine")
    if "signatures" in doc:
        return "general JWS serialization with several signatures; usine reads the flattened serialization"
    if set(doc) != MEMBERS:
        missing, extra = sorted(MEMBERS - set(doc)), sorted(set(doc) - MEMBERS)
        return ("not a flattened JWS JSON object"
                + (f" (missing {', '.join(missing)})" if missing else "")
                + (f" (unexpected {', '.join(extra)})" if extra else ""))
    if not all(isinstance(doc[m], str) for m in MEMBERS):
        return "JWS members protected, payload and signature must be strings"
    return None


def verify_envelope(doc: Any, keys: KeyRing, *, source: str = "document") -> Verified:
    """Verify a signed document against trusted keys; its payload (a JSON object) and signing key id.

    Raises SignatureError naming what is wrong: not a JWS, old envelope, unsupported algorithm, a header member
    usine never signs (``jwk``, ``x5u``, ``crit``, ``b64``…: the key is the trusted one ``kid`` names, and the payload
    is base64url), untrusted key id, or a signature that does not match the content.
    """
    problem = _envelope_problem(doc)
    if problem:
        raise SignatureError(problem, file=source)
    header = _header(doc, source)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ACCEPTED_ALGS:
        raise SignatureError(f"unsupported signature algorithm {alg!r} (expected {ALG})", file=source,
                             where="protected.alg")
    extra = sorted(set(header) - HEADER_MEMBERS)
    if extra:
        raise SignatureError(f"protected header member(s) {', '.join(extra)} that usine never signs (a key embedded or "
                             "pointed to, a critical extension, an unencoded payload): only alg, kid and typ are read",
                             file=source, where=f"protected.{extra[0]}")
    if header.get("typ", TYP) != TYP:
        raise SignatureError(f"typed {header['typ']!r}, not a usine document ({TYP})", file=source, where="protected.typ")
    if not isinstance(kid, str):
        raise SignatureError("protected header has no key id ('kid')", file=source, where="protected.kid")
    key = keys.get(kid)
    if key is None:
        raise SignatureError(f"signed by an untrusted key {kid[:16]}… (trusted: "
                             f"{', '.join(k[:16] + '…' for k in keys.kids()) or 'none'})",
                             file=source, where="protected.kid")
    try:
        signed = jws.deserialize_json(doc, key.okp(), registry=quiet_registry(str(alg)))
    except BadSignatureError as exc:
        raise SignatureError("signature does not match the content (edited after signing?)",
                             file=source, where="signature") from exc
    except (JoseError, ValueError) as exc:
        raise SignatureError(f"not a valid JWS: {exc}", file=source) from exc
    payload = jsonio.loads(signed.payload, source=f"{source} (payload)")
    if not isinstance(payload, dict):
        raise SignatureError("the signed payload is not a JSON object", file=source, where="payload")
    return Verified(payload, kid)


def verify_document(doc: Any, keys: KeyRing, *, source: str = "document") -> dict[str, Any]:
    """The verified payload of a signed document (see :func:`verify_envelope`)."""
    return verify_envelope(doc, keys, source=source).payload


def unverified_payload(doc: Any, *, source: str = "document") -> dict[str, Any]:
    """The payload of a signed document WITHOUT checking its signature (display, or one's own sandbox)."""
    problem = _envelope_problem(doc)
    if problem:
        raise SignatureError(problem, file=source)
    try:
        raw = urlsafe_b64decode(str(doc["payload"]).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SignatureError(f"payload is not base64url: {exc}", file=source, where="payload") from exc
    payload = jsonio.loads(raw, source=f"{source} (payload)")
    if not isinstance(payload, dict):
        raise SignatureError("the signed payload is not a JSON object", file=source, where="payload")
    return payload


def signer_kid(doc: Any, *, source: str = "document") -> str | None:
    """The ``kid`` a signed document's protected header names (not verified), or None."""
    if _envelope_problem(doc):
        return None
    try:
        kid = _header(doc, source).get("kid")
    except InputError:
        return None
    return kid if isinstance(kid, str) else None


def load_json_file(path: str | Path) -> Any:
    """Read a JSON file (strict, bounded), with errors naming the file, line and column."""
    return jsonio.load_file(path)
