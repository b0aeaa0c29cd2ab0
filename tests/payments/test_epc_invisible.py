"""Text that looks Latin but is not written as precomposed letters: decomposed accents (NFD), invisible characters."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments.epc import NAME_MAX, REMITTANCE_MAX, epc_id, epc_name_problem, epc_text
from conformity.xmlsafe import parse_xml
from tests.payments.test_epc import assert_epc, pain001, payment

PAIN = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}"
#: soft hyphen, zero-width space / non-joiner / joiner, left-to-right and right-to-left marks, bidi override and pop,
#: word joiner, byte order mark
INVISIBLE = "\u00ad\u200b\u200c\u200d\u200e\u200f\u202e\u202c\u2060\ufeff"


def test_a_name_written_decomposed_reads_as_the_same_name() -> None:
    """macOS and many web forms keep text in NFD (``e`` + U+0301): the accent is a mark of its letter, not a word
    break; before, ``Société Générale`` written so reached the bank as ``Socie te Ge ne rale``."""
    for name in ("Société Générale", "Müller & Söhne", "Ελληνικό Λογισμικό", "Ёлка Їжак", "Ångström Åland"):
        decomposed = unicodedata.normalize("NFD", name)
        assert decomposed != name
        assert epc_text(decomposed, NAME_MAX) == epc_text(name, NAME_MAX)
    assert epc_text(unicodedata.normalize("NFD", "Société Générale"), NAME_MAX) == "Societe Generale"


def test_invisible_characters_join_what_they_sit_in() -> None:
    """A soft hyphen, a zero-width joiner or a bidi mark inside a word is nothing a reader sees: never a space."""
    assert epc_text("Ac\u00adme\u200d So\u200eft \u202eSAS\u202c", NAME_MAX) == "Acme Soft SAS"
    assert epc_text("\ufeffCabinet\u2060Martin", NAME_MAX) == "CabinetMartin"
    assert epc_id("lbl_2026\u00ad-W1_acme\u200b") == "lbl-2026-W1-acme"
    assert epc_text("Line\none\ttwo\x00three", NAME_MAX) == "Line one two three"  # controls stay word breaks
    assert epc_name_problem("\u0301\u0301" + INVISIBLE) is not None  # nothing left: refused, never sent as "-"


def test_decomposed_hostile_creditors_in_a_pain001_meet_the_xsd_and_the_epc_rules() -> None:
    names = [unicodedata.normalize("NFD", "Société Générale d'Équipement"), "Ac\u00adme" + INVISIBLE + "SAS",
             "e\u0301" * 100, INVISIBLE * 20]
    xml = pain001(unicodedata.normalize("NFD", "Agence régionale"), [payment(i, n) for i, n in enumerate(names)])
    assert_epc(xml)
    creditors = [el.text for el in parse_xml(xml, source="pain.001").iter(f"{PAIN}Nm")]
    assert creditors == ["Agence regionale"] * 2 + ["Societe Generale d'Equipement", "AcmeSAS", "e" * NAME_MAX, "-"]


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", categories=("L", "M", "Zs", "Cf")), max_size=120))
def test_nfd_and_nfc_of_any_text_give_the_same_epc_text(value: str) -> None:
    """A text and its decomposed form are one text to a reader: they reach the bank the same."""
    nfc, nfd = unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)
    assert epc_text(nfd, REMITTANCE_MAX) == epc_text(nfc, REMITTANCE_MAX)
