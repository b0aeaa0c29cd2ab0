"""The identity provider's JOSE side: its keys (persisted, reused) and the ID tokens it signs or forges.

The file (``SandboxConfig.idp_key_path``, mode 0600) holds two private EC P-256 JWKs::

    {"format": "usine.idp-keys/1", "signing": {...}, "unpublished": {...}}

``signing`` signs every ID token and is the only key in the published JWKS; ``unpublished``
exists only to forge ID tokens under a kid the JWKS does not hold (the ``unknown_kid`` fault).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeySet
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from conformity.errors import UsineError
from conformity.files import private_dir

ALG = "ES256"
STALE_AUTH_SECONDS = 13 * 3600  # older than the 12-hour maximum authentication age (PRACAUTH-017)
FUTURE_SECONDS = 3600  # far beyond any allowed clock skew (PRACAUTH-011)
FORMAT = "usine.idp-keys/1"


class IdpKeyError(UsineError):
    """The identity provider's key file exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class IdpKeys:
    """The signing key (published) and the unpublished key (for forged ID tokens)."""

    signing: ECKey
    unpublished: ECKey

    @property
    def kid(self) -> str:
        return str(self.signing.kid)

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document: public parts only, with kid, use and alg."""
        return dict(KeySet([self.signing]).as_dict(private=False))


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


def load_or_create(path: Path) -> IdpKeys:
    """The keys stored at ``path``, created there first if absent (safe when processes race)."""
    if path.exists():
        return _load(path)
    private_dir(path.parent)
    keys = IdpKeys(_new_key(), _new_key())
    doc = {"format": FORMAT, "signing": keys.signing.as_dict(private=True),
           "unpublished": keys.unpublished.as_dict(private=True)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the file meanwhile: use theirs
        except FileExistsError:
            return _load(path)
    finally:
        os.unlink(tmp)
    return keys


def sign_id_token(keys: IdpKeys, claims: dict[str, Any], forgery: str | None = None) -> str:
    """A compact JWS of ``claims`` signed with the signing key, or forged as ``forgery`` says.

    Claim forgeries (wrong_issuer, wrong_audience, expired, wrong_nonce, wrong_acr, stale_auth_time,
    issued_in_future, foreign_azp: several audiences and another azp) change the claims and sign honestly; alg_none is unsigned; unknown_kid is signed by the unpublished key;
    bad_signature is signed honestly and then has its signature bytes corrupted.
    """
    claims = forge_claims(claims, forgery)
    if forgery == "alg_none":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])
    key = keys.unpublished if forgery == "unknown_kid" else keys.signing
    token = jwt.encode({"alg": ALG, "kid": key.kid}, claims, key, algorithms=[ALG])
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
    return out
