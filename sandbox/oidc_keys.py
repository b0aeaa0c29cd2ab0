"""The identity provider's JOSE keys: created on first start, kept in one private file, reused after.

The file (``SandboxConfig.idp_key_path``, mode 0600) holds two private EC P-256 JWKs::

    {"format": "usine.idp-keys/1", "signing": {...}, "unpublished": {...}}

``signing`` signs every ID token and is the only key in the published JWKS; ``unpublished``
exists only to forge ID tokens under a kid the JWKS does not hold (the ``unknown_kid`` fault).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

from conformity.errors import UsineError

ALG = "ES256"
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
    path.parent.mkdir(parents=True, exist_ok=True)
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
