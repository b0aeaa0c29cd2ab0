"""Text as it reads: how a data-received document's texts are compared when the infrastructure decides whether it
received the same thing twice (a DPE, a quote, a CDA document, a secure message), whatever their spelling."""

from __future__ import annotations

import unicodedata


def as_read(text: str) -> str:
    """``text`` in Unicode NFC, every run of white space (a no-break space too) one space, none around: ``"é"``
    composed or not, ``"a \\t b"`` and ``" a b "`` read alike."""
    return " ".join(unicodedata.normalize("NFC", text).split())
