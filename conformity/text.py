"""Text as it reads: how the texts of received data are compared when the infrastructure decides whether it received
the same thing twice (a pack's documents, deposits and messages), whatever their spelling."""

from __future__ import annotations

import unicodedata


def as_read(text: str) -> str:
    """``text`` in Unicode NFC, every run of white space (a no-break space too) one space, none around: ``"é"``
    composed or not, ``"a \\t b"`` and ``" a b "`` read alike."""
    return " ".join(unicodedata.normalize("NFC", text).split())
