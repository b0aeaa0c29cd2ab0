"""The EPC rules for text in SEPA credit transfers (EPC217-08, EPC132-08 implementation guidelines).

SEPA messages are XML in UTF-8, but the EPC restricts every text field to the **Latin character
set**: ``a-z A-Z 0-9 / - ? : ( ) . , ' +`` and space. Banks may reject anything else, or garble it.
Text headed for a pain.001 therefore goes through :func:`epc_text` (names, remittance information)
or :func:`epc_id` (references, identifications):

* letters with diacritics are transliterated (``é`` → ``e``, ``ß`` → ``ss``, ``Œ`` → ``OE``) as
  EPC217-08's conversion table does;
* Greek and Cyrillic letters are transliterated as the EPC217-08 SEPA conversion table does (Greece,
  Cyprus and Bulgaria are SEPA countries): ``Ελληνικό Λογισμικό Α.Ε.`` → ``Elliniko Logismiko A.E.``,
  ``ООО Медсофт`` → ``OOO Medsoft``; ``Θ`` → ``TH``, ``Χ`` → ``CH``, ``Ψ`` → ``PS``, ``Ж`` → ``ZH``,
  ``Щ`` → ``SHT``, ``Ъ`` → ``A`` (the table's Cyrillic is Bulgaria's alphabet). The few Cyrillic
  letters the table leaves out (Russian ``Ы Э``, Ukrainian ``Є І Ґ``, Serbian and Macedonian ``Ђ Ј Љ
  Њ Ћ Џ Ѕ``) are written as ISO 9 and the national romanisations write them in plain Latin letters; a
  letter with a mark (``Ё``, ``Ї``, ``Ў``, ``Ά``, polytonic Greek…) is its base letter's conversion,
  except ``Й`` → ``Y`` (the table's). The table gives ``я`` → ``a``, a slip beside its ``Я`` → ``YA``:
  usine writes ``ya``;
* a few signs have a conventional equivalent (``&`` → ``+``, ``_`` → ``-``, quotes → ``'``,
  brackets → ``( )``, ``;`` → ``,``);
* a combining mark left alone (a name written decomposed, NFD, as macOS keeps text: ``e`` then U+0301) and an
  invisible format character (soft hyphen, zero-width joiner, byte order mark, bidirectional marks and overrides)
  are dropped: ``Société`` written decomposed becomes ``Societe``, ``Ac`` soft hyphen ``me`` becomes ``Acme``,
  never ``Socie te`` nor ``Ac me``;
* every other character (controls, emoji, ``@``, ``"`` …) becomes a space; runs of blanks become one
  space; the text is trimmed and cut to the field's maximum length (EPC: names 70, unstructured
  remittance 140, identifiers 35);
* identifiers also never start or end with ``/`` nor contain ``//`` (EPC rule for references), and
  hold no space.

An empty result becomes ``-`` (the XSD's MaxNText types need one character at least); a name that
comes to no letter or digit is refused where the bank details are read (``payees``), not sent as ``-``.
"""

from __future__ import annotations

import re
import unicodedata

#: the EPC basic Latin character set, as a regular expression for one whole field
EPC_TEXT = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]*$")
#: maximum lengths of the pain.001 fields usine writes, per the EPC SCT implementation guidelines
NAME_MAX, REMITTANCE_MAX, ID_MAX = 70, 140, 35

#: Greek letters as EPC217-08's conversion table has them (as ELOT 743: Β → V, Η → I, Υ → Y, Ω → O); a letter
#: with a tonos or dialytika (Ά, Ϊ, ΐ…) or a symbol variant (ϑ, ϕ…) is its base letter's conversion (NFKD)
_GREEK_UPPER = dict(zip("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ", ["A", "V", "G", "D", "E", "Z", "I", "TH", "I", "K", "L", "M", "N", "X",
                                                     "O", "P", "R", "S", "T", "Y", "F", "CH", "PS", "O"], strict=True))
_GREEK = _GREEK_UPPER | {big.lower(): latin.lower() for big, latin in _GREEK_UPPER.items()} | {"ς": "s"}
#: Cyrillic letters: EPC217-08's table (Bulgaria's alphabet: Щ → SHT, Ъ → A, Ь → Y, Й → Y), then the letters it
#: has not, as ISO 9 / the national romanisations write them in plain Latin; Ё, Ї, Ў, Ѓ, Ќ… are their base letter's
_CYRILLIC_UPPER = dict(zip("АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЬЮЯЫЭЄІҐЂЈЉЊЋЏЅ",
                           ["A", "B", "V", "G", "D", "E", "ZH", "Z", "I", "Y", "K", "L", "M", "N", "O", "P", "R", "S",
                            "T", "U", "F", "H", "TS", "CH", "SH", "SHT", "A", "Y", "YU", "YA",
                            "Y", "E", "YE", "I", "G", "DJ", "J", "LJ", "NJ", "C", "DZ", "DZ"], strict=True))
_CYRILLIC = _CYRILLIC_UPPER | {big.lower(): latin.lower() for big, latin in _CYRILLIC_UPPER.items()}
#: letters NFKD does not decompose into a base letter plus marks (Latin ones, Greek, Cyrillic)
_LETTERS = {"ß": "ss", "ẞ": "SS", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Ø": "O", "ø": "o", "Đ": "D",
            "đ": "d", "Ł": "L", "ł": "l", "Þ": "TH", "þ": "th", "Ð": "D", "ð": "d", "ı": "i", "Ŧ": "T",
            "ŧ": "t", "Ħ": "H", "ħ": "h", "ĸ": "k", "Ŋ": "N", "ŋ": "n", "€": "E", **_GREEK, **_CYRILLIC}
#: signs with a conventional equivalent in the set
_SIGNS = {"&": "+", "_": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "’": "'", "‘": "'",
          "`": "'", "´": "'", "«": "'", "»": "'", "“": "'", "”": "'", "[": "(", "]": ")", "{": "(", "}": ")",
          ";": ",", "!": ".", "…": "..."}
_BLANKS = re.compile(r"\s+")
_NOT_EPC = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")
_LETTER_OR_DIGIT = re.compile(r"[A-Za-z0-9]")
#: Unicode categories of characters that are no letter of their own: nonspacing and enclosing marks, format characters
_DROPPED = frozenset({"Mn", "Me", "Cf"})


def transliterate(value: str) -> str:
    """``value`` in the EPC Latin set: letters transliterated, known signs converted, anything else a space."""
    if EPC_TEXT.match(value):  # already in the set (most names and references): each character stays itself
        return value
    return _NOT_EPC.sub(" ", value.translate(_CONVERTED))


def _converted(char: str) -> str:
    """One character in the EPC set (itself, its transliteration or conventional sign, or a space)."""
    if unicodedata.category(char) in _DROPPED:  # a mark on the letter before it, or a character nobody sees
        return ""
    char = _LETTERS.get(char, _SIGNS.get(char, char))
    if len(char) == 1 and not EPC_TEXT.match(char):  # a letter with marks: its base letters, converted
        base = "".join(_LETTERS.get(c, c) for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
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


def epc_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an account holder in a SEPA transfer (nothing of it left in the EPC set but signs and
    spaces: a bank would get ``-`` or ``. .``), or None."""
    written = epc_text(name, NAME_MAX)
    if _LETTER_OR_DIGIT.search(written):
        return None
    return (f"has no letter or digit in the EPC Latin character set SEPA transfers use (it would reach the bank as "
            f"{written!r}): write the account holder's name in Latin, Greek or Cyrillic letters")


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
