"""Secrets the sandbox issues: kept only as SHA-256 hashes (plus a short prefix for display), found by hash.

Tokens and client secrets are 192- or 256-bit random strings, so an unkeyed SHA-256 is enough to make a
stolen database useless. A secret is shown in clear once, in the answer that issues it. The sandbox still
recognises its secrets wherever they turn up later (a trace to redact, a leak to report): every run of
token characters of an issued secret's length is hashed and looked up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

PREFIX_CHARS = 6
#: lengths of what the sandbox issues (``secrets.token_urlsafe(24)`` → 32, ``(32)`` → 43 characters)
ISSUED_LENGTHS = (32, 43)
SECRET_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])")
#: a maximal run of token characters: secret-shaped when its length is one of ISSUED_LENGTHS (what SECRET_SHAPED
#: matches, found in one pass over the text instead of an attempt at every position of every run)
TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{32,}")
SHORTEST = min(ISSUED_LENGTHS)
#: a run of lowercase hexadecimal digits: a UUID's hex or a digest (a document's unique id carries one, in every
#: submission and its answer), never a secret the sandbox issued — those are ``token_urlsafe``, drawn from 64
#: characters, all 32 of them from these 16 with probability 2**-64 — so never hashed and looked up in the store
HEX_ONLY = re.compile(r"[0-9a-f]+")


def secret_hash(secret: str) -> str:
    """The hex SHA-256 a secret is stored and looked up as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """What may be shown of a secret: its first characters and an ellipsis."""
    return secret[:PREFIX_CHARS] + "…"


#: every byte but the token characters' turned into a space: a text's UTF-8 bytes, translated, split on whitespace, are
#: its maximal runs of token characters (what :data:`TOKEN_RUN` finds, whatever their length), in C-speed steps (a
#: quarter of the regular expression's time on a document-carrying body); a non-ASCII character's bytes are never token
#: characters (UTF-8 puts ASCII bytes for ASCII characters only)
_TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_RUNS = bytes(c if c in _TOKEN_BYTES else 0x20 for c in range(256))
_HEX_ONLY_BYTES = re.compile(HEX_ONLY.pattern.encode("ascii"))


def candidates(texts: Iterable[str]) -> set[str]:
    """Substrings of ``texts`` shaped like a secret the sandbox issues (exact length, token alphabet; not
    :data:`HEX_ONLY`): the maximal runs of token characters (:data:`TOKEN_RUN`) of an issued length."""
    found: set[str] = set()
    for text in texts:
        if len(text) >= SHORTEST:
            runs = text.encode("utf-8", "surrogatepass").translate(_RUNS).split()
            found.update(run.decode("ascii") for run in runs
                         if len(run) in ISSUED_LENGTHS and _HEX_ONLY_BYTES.fullmatch(run) is None)
    return found
