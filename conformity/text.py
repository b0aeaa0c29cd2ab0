"""Text as it reads: how the texts of received data are compared when the infrastructure decides whether it received
the same thing twice (a pack's documents, deposits and messages), whatever their spelling; and which characters do
not read as written (a name shown to people, a text a person reads, refuses them)."""

from __future__ import annotations

import unicodedata


def as_read(text: str) -> str:
    """``text`` without its format characters (Unicode category Cf: zero-width spaces and joiners, a soft hyphen,
    bidirectional controls, which a reader does not see), in Unicode NFC, every run of white space (a no-break space
    too) one space, none around: ``"é"`` composed or not, ``"a \\t b"``, ``" a b "`` and ``"a\\u200b b"`` read alike.
    The infrastructure compares what documents and messages say in this form: a copy re-spelled with invisible
    characters is the same copy."""
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(unicodedata.normalize("NFC", text).split())


#: Unicode general categories that do not read as written: controls (NUL, line breaks, bell), format characters
#: (zero-width spaces, a soft hyphen, bidirectional overrides: ``Acme\u202eRHE`` reads as another name), line and
#: paragraph separators, private-use and surrogate code points (whatever a font makes of them). Unassigned code
#: points (Cn) are not: which are depends on the Unicode version of the Python reading them.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})


def hidden_characters(text: str) -> list[str]:
    """The characters ``text`` holds that do not read as they are written (:data:`HIDDEN_CATEGORIES`), as
    ``U+XXXX``, sorted. Spaces (Zs, the no-break spaces of French typography among them) read as spaces."""
    return sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in HIDDEN_CATEGORIES})
