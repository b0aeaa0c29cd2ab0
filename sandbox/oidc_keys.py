"""The identity provider's JOSE side: its keys (persisted, reused) and the ID tokens it signs or forges.

Two algorithms, as OpenID Connect Discovery §3 wants RS256 among them: **RS256** (the default of
OpenID Connect Dynamic Client Registration's ``id_token_signed_response_alg``) and **ES256**. A test
session is created for one of them (``POST /admin/sessions`` ``id_token_signed_response_alg``); its
JWKS publishes that algorithm's key and its ID tokens, signed userinfo and access tokens are signed
with it. Every forgery works with both.

ES256: ``SandboxConfig.idp_key_path`` (mode 0600) holds two private EC P-256 JWKs::

    {"format": "usine.idp-keys/1", "signing": {...}, "unpublished": {...}}

RS256: ``SandboxConfig.idp_rsa_key_path`` holds three private RSA-2048 JWKs (``format``
``usine.idp-rsa-keys/1``: ``signing``, ``unpublished``, ``rotated``), created on first start.

``signing`` signs every ID token and is the only key of its algorithm in the published JWKS;
``unpublished`` exists only to forge ID tokens under a kid the JWKS does not hold (the ``unknown_kid``
fault). ``rotated`` is the provider's next key: while a session's ``rotate_keys`` fault is on, the
JWKS publishes it alone and it signs the ID tokens, as after a key rotation (the EC one is derived
from ``signing`` with HKDF, so every process sharing the file has the same one; the RSA one is stored).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from conformity.errors import InputError
from conformity.files import private_dir
from conformity.signing import quiet_registry

ALG = "ES256"
RSA_ALG = "RS256"
#: the algorithms a session's client may register, the default first (OpenID Connect Registration §2)
ALGS = (RSA_ALG, ALG)
DEFAULT_ALG = RSA_ALG
RSA_FORMAT = "usine.idp-rsa-keys/1"
#: forgeries that leave out a claim the ID token must carry
MISSING_CLAIM = {"nonce_missing": "nonce", "iat_missing": "iat", "exp_missing": "exp", "sub_missing": "sub"}
#: the order of the P-256 group (keys derived from a hash are reduced into it)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
STALE_AUTH_SECONDS = 13 * 3600  # older than a 12-hour maximum authentication age
FUTURE_SECONDS = 3600  # far beyond any allowed clock skew
FORMAT = "usine.idp-keys/1"


class IdpKeyError(InputError):
    """The identity provider's key file exists but cannot be used (exit 2, as a damaged trace key)."""


@dataclass(frozen=True, slots=True)
class IdpKeys:
    """One algorithm's keys: the signing key (published), the unpublished key (forged ID tokens), the next key."""

    signing: ECKey | RSAKey
    unpublished: ECKey | RSAKey
    next_key: ECKey | RSAKey | None = None
    alg: str = ALG

    @property
    def kid(self) -> str:
        return str(self.signing.kid)

    @property
    def rotated(self) -> ECKey | RSAKey:
        """The key the provider rotates to (fault ``rotate_keys``): stable across processes."""
        if self.next_key is not None:
            return self.next_key
        assert isinstance(self.signing, ECKey), "an RSA key set carries its rotated key (next_key)"
        return _derived(self.signing)

    def public_jwks(self, rotated: bool = False) -> dict[str, Any]:
        """The JWKS document: public parts only, with kid, use and alg (after a rotation: the new key only)."""
        return dict(KeySet([self.rotated if rotated else self.signing]).as_dict(private=False))


@dataclass(frozen=True, slots=True)
class ProviderKeys:
    """The provider's keys for each algorithm it signs with."""

    by_alg: dict[str, IdpKeys]

    def for_alg(self, alg: str | None) -> IdpKeys:
        return self.by_alg[alg or DEFAULT_ALG]


def _derived(key: ECKey) -> ECKey:
    """A P-256 key derived from ``key``'s private scalar with HKDF-SHA256 (the same in every process)."""
    private = key.private_key
    assert private is not None, "derived from a private key (the provider's signing key)"
    material = private.private_numbers().private_value.to_bytes(32, "big")
    okm = HKDF(algorithm=hashes.SHA256(), length=40, salt=None, info=b"usine idp rotated key").derive(material)
    scalar = int.from_bytes(okm, "big") % (int(P256_ORDER) - 1) + 1
    derived = ec.derive_private_key(scalar, ec.SECP256R1())
    key = ECKey.import_key(derived)
    return ECKey.import_key(derived, {"use": "sig", "alg": ALG, "kid": key.thumbprint()})


def _new_rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, {"use": "sig", "alg": RSA_ALG}, private=True, auto_kid=True)


def _new_key() -> ECKey:
    return ECKey.generate_key("P-256", {"use": "sig", "alg": ALG}, private=True, auto_kid=True)


def _load(path: Path) -> IdpKeys:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
        keys = IdpKeys(ECKey.import_key(doc["signing"]), ECKey.import_key(doc["unpublished"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IdpKeyError(f"{path}: not a usable identity provider key file ({exc})") from exc
    if not (keys.signing.is_private and keys.unpublished.is_private) or keys.signing.kid == keys.unpublished.kid:
        raise IdpKeyError(f"{path}: needs two distinct private keys")
    return keys


def _load_rsa(path: Path) -> IdpKeys:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != RSA_FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {RSA_FORMAT!r}")
        signing, unpublished, rotated = (RSAKey.import_key(doc[name]) for name in ("signing", "unpublished", "rotated"))
        keys = IdpKeys(signing, unpublished, rotated, alg=RSA_ALG)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IdpKeyError(f"{path}: not a usable identity provider key file ({exc})") from exc
    kids = {keys.signing.kid, keys.unpublished.kid, keys.rotated.kid}
    if not all(k.is_private for k in (keys.signing, keys.unpublished, keys.rotated)) or len(kids) != 3:
        raise IdpKeyError(f"{path}: needs three distinct private RSA keys")
    return keys


def _create_once(path: Path, doc: dict[str, Any]) -> bool:
    """Write ``doc`` at ``path`` unless another process did first (then False: use theirs)."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the file meanwhile
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    return True


def _ec_keys(path: Path) -> IdpKeys:
    if path.exists():
        return _load(path)
    keys = IdpKeys(_new_key(), _new_key())
    doc = {"format": FORMAT, "signing": keys.signing.as_dict(private=True),
           "unpublished": keys.unpublished.as_dict(private=True)}
    return keys if _create_once(path, doc) else _load(path)


def _rsa_keys(path: Path) -> IdpKeys:
    if path.exists():
        return _load_rsa(path)
    keys = IdpKeys(_new_rsa_key(), _new_rsa_key(), _new_rsa_key(), alg=RSA_ALG)
    doc = {"format": RSA_FORMAT, "signing": keys.signing.as_dict(private=True),
           "unpublished": keys.unpublished.as_dict(private=True), "rotated": keys.rotated.as_dict(private=True)}
    return keys if _create_once(path, doc) else _load_rsa(path)


#: the keys this process last loaded or made, per pair of files, with what the files were then (device, inode,
#: size, modification time): loading checks each RSA key (≈ 40 ms apiece), and a local run loads the files its key
#: thread has just written
_loaded: dict[tuple[Path, Path], tuple[tuple[tuple[int, ...], ...], ProviderKeys]] = {}


def _identity(*paths: Path) -> tuple[tuple[int, ...], ...] | None:
    try:
        return tuple((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns) for s in (p.stat() for p in paths))
    except OSError:
        return None


def load_or_create(path: Path, rsa_path: Path | None = None) -> ProviderKeys:
    """The keys stored at ``path`` (ES256) and ``rsa_path`` (RS256; default: beside it), created first if absent
    (safe when processes race). Files this process already read, unchanged since, are not read again."""
    rsa_path = rsa_path or path.with_name(path.stem + "-rsa" + path.suffix)
    where = (path.resolve(), rsa_path.resolve())
    before = _identity(*where)
    cached = _loaded.get(where)
    if before is not None and cached is not None and cached[0] == before:
        return cached[1]
    keys = ProviderKeys({RSA_ALG: _rsa_keys(rsa_path), ALG: _ec_keys(path)})
    after = _identity(*where)  # files are created whole (linked), never rewritten by the sandbox: kept if unchanged
    if after is not None and before in (None, after):
        _loaded[where] = (after, keys)
    return keys


def sign_id_token(keys: IdpKeys, claims: dict[str, Any], forgery: str | None = None, *, rotated: bool = False) -> str:
    """A compact JWS of ``claims`` signed with the signing key (the rotated one after a rotation), or forged as
    ``forgery`` says.

    Claim forgeries (wrong_issuer, wrong_audience, expired, wrong_nonce, wrong_acr, stale_auth_time,
    issued_in_future, foreign_azp, several_audiences_no_azp, nbf_in_future, nonce_missing, iat_missing,
    exp_missing, sub_missing, wrong_at_hash, wrong_c_hash) change the claims and sign honestly; alg_none is
    unsigned; hs256_public_key is an HMAC keyed with the provider's public key (an algorithm the provider does
    not list, RFC 8725 §2.1); unknown_kid is signed by the unpublished key; kid_absent is signed honestly
    without a kid in its header (a valid token); bad_signature is signed honestly and then has its signature
    bytes corrupted.
    """
    claims = forge_claims(claims, forgery)
    if forgery == "alg_none":
        return jwt.encode({"alg": "none"}, claims, None, algorithms=["none"],  # type: ignore[arg-type]  # alg "none" takes no key; joserfc's stub always asks for one
                          registry=quiet_registry("none"))
    current = keys.rotated if rotated else keys.signing
    if forgery == "hs256_public_key":
        # the provider's public key, as its JWKS publishes it, for the HMAC secret (JOSE libraries refuse PEM or DER
        # public keys as oct keys: the very protection a relying party should also have)
        public = json.dumps(current.as_dict(private=False), sort_keys=True, separators=(",", ":")).encode()
        return jwt.encode({"alg": "HS256", "kid": current.kid}, claims, OctKey.import_key(public), algorithms=["HS256"])
    key = keys.unpublished if forgery == "unknown_kid" else current
    header = {"alg": keys.alg} if forgery == "kid_absent" else {"alg": keys.alg, "kid": key.kid}
    token = jwt.encode(header, claims, key, algorithms=[keys.alg])
    if forgery == "bad_signature":
        head, payload, signature = token.split(".")
        raw = bytearray(urlsafe_b64decode(signature.encode("ascii")))
        raw[0] ^= 0xFF
        raw[-1] ^= 0xFF
        token = f"{head}.{payload}.{urlsafe_b64encode(bytes(raw)).decode('ascii')}"
    return token


def forge_claims(claims: dict[str, Any], forgery: str | None) -> dict[str, Any]:
    """The claims as a forgery changes them (a copy; unchanged for signature forgeries).

    Wrong values keep the right one as a prefix, so a client that compares by prefix or
    substring instead of equality is caught too.
    """
    out = dict(claims)
    if forgery == "wrong_issuer":
        out["iss"] = f"{claims['iss']}-other"
    elif forgery == "wrong_audience":
        out["aud"] = f"{claims['aud']}-other"
    elif forgery == "wrong_nonce":
        out["nonce"] = f"{claims.get('nonce', '')}-other"
    elif forgery == "wrong_acr":
        out["acr"] = f"{claims.get('acr', '')}-other"
    elif forgery == "stale_auth_time":
        out["auth_time"] = int(out["iat"]) - STALE_AUTH_SECONDS
    elif forgery == "issued_in_future":
        out.update(iat=out["iat"] + FUTURE_SECONDS, exp=out["exp"] + FUTURE_SECONDS)
    elif forgery == "foreign_azp":
        out.update(aud=[claims["aud"], f"{claims['aud']}-other"], azp=f"{claims['aud']}-other")
    elif forgery == "expired":
        shift = int(out["exp"]) - int(out["iat"]) + 3600
        out.update(iat=out["iat"] - shift, exp=out["exp"] - shift, auth_time=out.get("auth_time", out["iat"]) - shift)
    elif forgery == "several_audiences_no_azp":
        out["aud"] = [claims["aud"], f"{claims['aud']}-other"]
        out.pop("azp", None)
    elif forgery == "nbf_in_future":
        out["nbf"] = int(out["iat"]) + FUTURE_SECONDS
    elif forgery in MISSING_CLAIM:
        out.pop(MISSING_CLAIM[forgery], None)
    elif forgery in ("wrong_at_hash", "wrong_c_hash"):
        name = forgery.split("_", 1)[1]
        out[name] = urlsafe_b64encode(bytes(16)).decode("ascii").rstrip("=")  # a hash of nothing issued
    return out
