"""INS (national health identifier) rules: OIDs, NIR control key, trait normalisation."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

OID_NIR = "1.2.250.1.213.1.4.8"
OID_NIA = "1.2.250.1.213.1.4.9"
OID_TEST_NIR = "1.2.250.1.213.1.4.10"
OID_DEMO_NIR = "1.2.250.1.213.1.4.11"  # the demo NIR (not a test NIA: there is none among the INS OIDs)
INS_OIDS = {OID_NIR: "NIR", OID_NIA: "NIA", OID_TEST_NIR: "test NIR", OID_DEMO_NIR: "demo NIR"}

TRAITS = ("birth_name", "first_names", "birth_date", "sex", "birth_place_code")
IDENTITY_STATUSES = ("provisional", "recovered", "validated", "qualified")

_LIGATURES = {"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS"}
_ALLOWED = re.compile(r"[^A-Z '\-]")
_HYPHEN, _APOSTROPHE, _SPACES = re.compile(r"\s*-\s*"), re.compile(r"\s*'\s*"), re.compile(r"\s+")


def nir_key(first13: str) -> str:
    """The 2-digit control key of a 13-character NIR (Corsica 2A/2B handled)."""
    digits = first13.upper().replace("2A", "19").replace("2B", "18")
    return f"{97 - int(digits) % 97:02d}"


def is_valid_ins(ins: str) -> bool:
    """A 15-character NIR/NIA whose last two digits are its control key."""
    if not re.fullmatch(r"[12378][0-9]{2}(0[1-9]|1[0-2]|[2-9][0-9])(2[AB]|[0-9]{2})[0-9]{6}[0-9]{2}", ins or ""):
        return False
    return nir_key(ins[:13]) == ins[13:]


def normalise_name(text: str) -> str:
    """A name as the INS registry holds it: upper case, no diacritics, only A-Z, space, hyphen, apostrophe."""
    if not text.isascii():  # ASCII has no ligature, decomposition, combining mark or typographic quote
        text = "".join(_LIGATURES.get(c, c) for c in text)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
        text = text.upper().replace("’", "'").replace("‘", "'").replace("‐", "-").replace("–", "-")
    else:
        text = text.upper()
    text = _ALLOWED.sub(" ", text)
    text = _HYPHEN.sub("-", text)
    text = _APOSTROPHE.sub("'", text)
    return _SPACES.sub(" ", text).strip(" -'")


def normalise_traits(traits: dict[str, Any]) -> dict[str, str]:
    """The five strict traits, normalised for comparison."""
    return {
        "birth_name": normalise_name(str(traits.get("birth_name", ""))),
        "first_names": normalise_name(str(traits.get("first_names", ""))),
        "birth_date": str(traits.get("birth_date", "")).strip(),
        "sex": str(traits.get("sex", "")).strip().upper(),
        "birth_place_code": str(traits.get("birth_place_code", "")).strip().upper(),
    }


def ins_reference(ins: str, oid: str) -> str:
    """The INS in the document-sharing metadata form ``NIR^^^&OID&ISO^NH``."""
    return f"{ins}^^^&{oid}&ISO^NH"
