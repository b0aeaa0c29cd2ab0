"""The EPC rules for text in SEPA credit transfers (EPC217-08, EPC132-08 implementation guidelines).

SEPA messages are XML in UTF-8, but the EPC restricts every text field to the **Latin character
set**: ``a-z A-Z 0-9 / - ? : ( ) . , ' +`` and space. Banks may reject anything else, or garble it.
Text headed for a pain.001 therefore goes through :func:`epc_text` (names, remittance information)
or :func:`epc_id` (references, identifications):

* letters with diacritics are transliterated (``é`` → ``e``, ``ß`` → ``ss``, ``Œ`` → ``OE``) as
  EPC217-08's conversion table does;
* a few signs have a conventional equivalent (``&`` → ``+``, ``_`` → ``-``, quotes → ``'``,
  brackets → ``( )``, ``;`` → ``,``);
* every other character (controls, emoji, ``@``, ``"`` …) becomes a space; runs of blanks become one
  space; the text is trimmed and cut to the field's maximum length (EPC: names 70, unstructured
  remittance 140, identifiers 35);
* identifiers also never start or end with ``/`` nor contain ``//`` (EPC rule for references), and
  hold no space.

An empty result becomes ``-`` (the XSD's MaxNText types need one character at least).
"""

from __future__ import annotations

import re
import unicodedata

#: the EPC basic Latin character set, as a regular expression for one whole field
EPC_TEXT = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]*$")
#: maximum lengths of the pain.001 fields usine writes, per the EPC SCT implementation guidelines
NAME_MAX, REMITTANCE_MAX, ID_MAX = 70, 140, 35

#: letters NFKD does not decompose into a base letter plus marks
_LETTERS = {"ß": "ss", "ẞ": "SS", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Ø": "O", "ø": "o", "Đ": "D",
            "đ": "d", "Ł": "L", "ł": "l", "Þ": "TH", "þ": "th", "Ð": "D", "ð": "d", "ı": "i", "Ŧ": "T",
            "ŧ": "t", "Ħ": "H", "ħ": "h", "ĸ": "k", "Ŋ": "N", "ŋ": "n", "€": "E"}
#: signs with a conventional equivalent in the set
_SIGNS = {"&": "+", "_": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "’": "'", "‘": "'",
          "`": "'", "´": "'", "«": "'", "»": "'", "“": "'", "”": "'", "[": "(", "]": ")", "{": "(", "}": ")",
          ";": ",", "!": ".", "…": "..."}
_BLANKS = re.compile(r"\s+")
_NOT_EPC = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


def transliterate(value: str) -> str:
    """``value`` in the EPC Latin set: letters transliterated, known signs converted, anything else a space."""
    if EPC_TEXT.match(value):  # already in the set (most names and references): each character stays itself
        return value
    return _NOT_EPC.sub(" ", value.translate(_CONVERTED))


def _converted(char: str) -> str:
    """One character in the EPC set (itself, its transliteration or conventional sign, or a space)."""
    char = _LETTERS.get(char, _SIGNS.get(char, char))
    if len(char) == 1 and not EPC_TEXT.match(char):
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        char = base if base and EPC_TEXT.match(base) else " "
    return char


class _Conversions(dict[int, str]):
    """:func:`_converted` of each code point ``str.translate`` asks for, kept below U+3000 (Latin, Greek,
    Cyrillic…: a bounded table; a name with an underscore was converted character by character in Python)."""

    def __missing__(self, point: int) -> str:
        char = _converted(chr(point))
        if point < 0x3000:
            self[point] = char
        return char


_CONVERTED = _Conversions()


def epc_text(value: str, limit: int) -> str:
    """A free-text field (name, remittance): EPC set, one line, single spaces, at most ``limit`` characters."""
    text = _BLANKS.sub(" ", transliterate(value)).strip()[:limit].strip()
    return text or "-"


def epc_id(value: str, limit: int = ID_MAX) -> str:
    """A reference or identification: EPC set, no space, no leading/trailing ``/`` nor ``//``, at most ``limit``."""
    text = re.sub(r"/{2,}", "/", transliterate(value).replace(" ", ""))
    text = text.strip("/")[:limit].strip("/")
    return text or "-"


def epc_violations(value: str, limit: int, *, identifier: bool = False) -> list[str]:
    """Why ``value`` breaks the EPC rules for a field of at most ``limit`` characters (empty: it does not)."""
    problems = []
    bad = sorted(set(_NOT_EPC.findall(value)))
    if bad:
        problems.append("characters outside the EPC Latin set: " + " ".join(repr(c) for c in bad))
    if not value:
        problems.append("empty")
    if len(value) > limit:
        problems.append(f"{len(value)} characters, more than {limit}")
    if value != value.strip() or "  " in value:
        problems.append("leading, trailing or repeated spaces")
    if identifier and (value.startswith("/") or value.endswith("/") or "//" in value or " " in value):
        problems.append("an identifier starting or ending with '/', containing '//' or a space")
    return problems
