"""pain.001 text under the EPC rules: every text field of every order, hostile names, the ISO 20022 XSD."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from conformity.payments.epc import (
    _NOT_EPC,
    EPC_TEXT,
    ID_MAX,
    NAME_MAX,
    REMITTANCE_MAX,
    _converted,
    epc_id,
    epc_name_problem,
    epc_text,
    epc_violations,
    transliterate,
)
from conformity.payments.orders import _write_pain001
from conformity.payments.payees import Account
from conformity.xmlsafe import parse_xml
from tests.payments.builders import epc_problems, pain001_schema

#: the maximum length EPC allows for each text element usine writes; identifiers have the reference rule too
LIMITS = {"Nm": NAME_MAX, "Ustrd": REMITTANCE_MAX, "MsgId": ID_MAX, "PmtInfId": ID_MAX, "EndToEndId": ID_MAX}
IDENTIFIERS = {"MsgId", "PmtInfId", "EndToEndId"}
HOSTILE = ["Société Générale d'Équipement Médical — Île-de-France", "Müller & Söhne GmbH", "Łódź Øresund Ærø Œuvre",
           "ACME_SOFTWARE__v2", 'Acme, "Santé" & Co\nLine two; =HYPERLINK("x")\r\n\ttab', "日本語ソフト", "🙂🙂🙂",
           "Straße " * 20, "//leading//and//trailing//", "", "   ", "\x00\x1f\x7f", "a" * 500]
SCHEMA = pain001_schema()  # the ISO 20022 XSD every order is validated against


def pain001(payer_name: str, payments: list[dict[str, Any]], msg_id: str = "USINE-0123456789abcdef-000001") -> bytes:
    fh = io.BytesIO()
    batch = {"msg_id": msg_id, "created": "2026-12-01T10:00:00+00:00", "execution_date": "2026-12-03",
             "transactions": len(payments), "total_cents": sum(p["amount_cents"] for p in payments)}
    _write_pain001(fh, batch, Account(payer_name, "FR7630004000031234567890143", "BNPAFRPPXXX"), payments)
    return fh.getvalue()


def payment(n: int, creditor: str, **text: str) -> dict[str, Any]:
    return {"id": n, "wave": text.get("wave", "2026-W1"), "amount_cents": 2_800_000 + n, "currency": "EUR",
            "bic": "CCBPFRPPXXX", "iban": "FR1420041010050500013M02606", "creditor_name": creditor,
            "category": text.get("category", "GP"), "site_size": text.get("site_size", "M"),
            "software_id": text.get("software", "acme_ehr"), "site_id": text.get("site", "750100011"),
            "label_id": text.get("label", "lbl_2026-W1_acme_ehr_3.1")}


def text_fields(xml: bytes) -> list[tuple[str, str]]:
    """(tag, text) of every element that carries text."""
    root = parse_xml(xml, source="pain.001")
    return [(etree.QName(el).localname, el.text or "") for el in root.iter() if len(el) == 0]


def assert_epc(xml: bytes) -> None:
    root = parse_xml(xml, source="pain.001")
    assert SCHEMA.validate(root.getroottree()), SCHEMA.error_log
    assert not epc_problems(xml)  # the EPC rule as written in the tests, apart from conformity.payments.epc
    for tag, text in text_fields(xml):
        limit = LIMITS.get(tag, 140)
        problems = epc_violations(text, limit, identifier=tag in IDENTIFIERS)
        assert not problems, f"<{tag}> {text!r}: {problems}"
        assert "_" not in text or tag not in ("Ustrd", "Nm")


def test_every_text_field_of_hostile_orders_meets_the_epc_rules_and_the_xsd() -> None:
    payments = [payment(i, name, software=name or "x", site=name, label=f"lbl_{name}") for i, name in enumerate(HOSTILE)]
    xml = pain001("Agence régionale de santé — Pays de la Loire", payments)
    assert_epc(xml)
    fields = text_fields(xml)
    names = [text for tag, text in fields if tag == "Nm"]
    assert names[:2] == ["Agence regionale de sante - Pays de la Loire"] * 2  # initiating party, debtor
    assert "Societe Generale d'Equipement Medical - Ile-de-France" in names
    assert "Muller + Sohne GmbH" in names and "Lodz Oresund AEro OEuvre" in names
    assert "ACME-SOFTWARE--v2" in names
    assert "Strasse " * 8 + "Strass" in names  # 160 characters once transliterated, cut at 70
    assert all(len(n) <= NAME_MAX for n in names) and ("a" * NAME_MAX) in names
    assert names.count("-") >= 3  # only unrepresentable characters, blanks or nothing: "-", never an empty element
    remittances = [text for tag, text in fields if tag == "Ustrd"]
    assert len(remittances) == len(HOSTILE) and all("_" not in r for r in remittances)
    assert remittances[0].startswith("usine 2026-W1 GP/M software Societe Generale d'Equipement")


def test_epc_text_and_ids() -> None:
    assert epc_text("Pâtisserie Œuf & Café_Crème", 70) == "Patisserie OEuf + Cafe-Creme"
    assert epc_text("x" * 80, NAME_MAX) == "x" * 70
    assert epc_text("a  \t b\n", 70) == "a b"
    assert epc_text("@@@", 70) == "-"
    assert epc_id("//USINE//a b_c/") == "USINE/ab-c"
    assert epc_id("A" * 40) == "A" * 35
    assert epc_violations("a_b", 70) and epc_violations("a" * 71, 70) and epc_violations("/x", 35, identifier=True)
    assert epc_violations("Société", 70) == ["characters outside the EPC Latin set: 'é'"]


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=1, max_value=140))
def test_any_text_becomes_epc_text_within_its_limit(value: str, limit: int) -> None:
    text = epc_text(value, limit)
    assert EPC_TEXT.match(text) and 1 <= len(text) <= limit and not epc_violations(text, limit)
    ident = epc_id(value, min(limit, ID_MAX))
    assert not epc_violations(ident, min(limit, ID_MAX), identifier=True)


HOSTILE_TEXT = st.one_of(st.text(max_size=200), st.sampled_from(HOSTILE),
                         st.text(alphabet=st.sampled_from("éèàçÉÀÇœŒßøØ_&@\"<>;!{}[]~#%*=|\\^$€\t\n"), max_size=90))


EPC_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-?:().,'+ "


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=100), st.text(alphabet=EPC_CHARS, max_size=100), HOSTILE_TEXT))
def test_transliteration_is_what_converting_each_character_gives(value: str) -> None:
    """``transliterate`` (a text already in the set as it is, any other through its table of conversions) gives what
    converting each character gives."""
    assert transliterate(value) == _NOT_EPC.sub(" ", "".join(_converted(char) for char in value))


@settings(derandomize=True, max_examples=40, deadline=None)
@given(payer=HOSTILE_TEXT, parties=st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT),
                                            min_size=1, max_size=4))
def test_orders_with_hostile_names_meet_the_epc_rules_and_the_xsd(payer: str, parties: list[tuple[str, ...]]) -> None:
    payments = [payment(i, creditor, software=software, site=site, label=label)
                for i, (creditor, software, site, label) in enumerate(parties, start=1)]
    assert_epc(pain001(payer, payments))


def test_greek_and_cyrillic_names_are_transliterated_as_epc217_08_does() -> None:
    """Greece, Cyprus and Bulgaria are SEPA countries: their names reach the bank in Latin letters, not as '-'."""
    assert epc_text("Ελληνικό Λογισμικό Α.Ε.", NAME_MAX) == "Elliniko Logismiko A.E."
    # the table converts letter by letter: Χ is CH before a small letter too
    assert epc_text("ΘΕΣΣΑΛΟΝΙΚΗ Χίος Ψυχικό Ωραιόκαστρο", NAME_MAX) == "THESSALONIKI CHios PSychiko Oraiokastro"
    assert epc_text("Βόλος Ύδρα Ϊ ΐ ΰ ς", NAME_MAX) == "Volos Ydra I i y s"
    assert epc_text("ООО Медсофт", NAME_MAX) == "OOO Medsoft"
    assert epc_text("Щастлива Ябълка ЕООД", NAME_MAX) == "SHTastliva YAbalka EOOD"
    assert epc_text("жчшщъьюя Йордан", NAME_MAX) == "zhchshshtayyuya Yordan"
    assert epc_text("Ёлка Їжак Ўзбек Ѓорѓи Љубљана Џеп Ђорђе", NAME_MAX) == "Elka Izhak Uzbek Gorgi LJubljana DZep DJordje"
    assert epc_text("Эхо Ыы Єва Ґанок", NAME_MAX) == "Eho Yy YEva Ganok"


def test_greek_and_cyrillic_creditors_in_a_pain001_meet_the_epc_rules() -> None:
    xml = pain001("Τράπεζα Πληρωμών", [payment(1, "Ελληνικό Λογισμικό Α.Ε."), payment(2, "ООО Медсофт")])
    assert_epc(xml)
    names = [text for tag, text in text_fields(xml) if tag == "Nm"]
    assert names == ["Trapeza Pliromon", "Trapeza Pliromon", "Elliniko Logismiko A.E.", "OOO Medsoft"]


def test_a_name_with_no_letter_or_digit_left_is_a_problem() -> None:
    for name in ("株式会社メディカル", "🙂 & ;", "..."):
        problem = epc_name_problem(name)
        assert problem is not None and "no letter or digit" in problem and "Latin, Greek or Cyrillic" in problem
    for name in ("Ελληνικό Λογισμικό Α.Ε.", "ООО Медсофт", "3M", "株式会社 Medical KK"):
        assert epc_name_problem(name) is None
