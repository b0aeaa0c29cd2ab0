"""A DPE's identity is its meaning (:func:`conformity.packs.housing.dpe.identity`), and its values are read whole.

QA: one DPE re-spelled (an xsi attribute, a timezone on its date, two spaces, NFD accents, -0, its heating
installations in another order) was filed again under a new number, each filing a paid data-received event; a comment
inside a value cut it (lxml's ``.text``), so two different DPEs were one and a DPE naming ``REG-1<!---->-OTHER``
passed for software REG-1.
"""

from __future__ import annotations

import unicodedata
from decimal import Context, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from conformity.packs.housing import dpe
from conformity.packs.housing.dpe import _value, build_dpe, coherence, identity, leaf_text, parse_dpe, read_dpe

VALUES: dict[str, Any] = {
    "software_id": "REG-1", "software_version": "1.0", "family_name": "Dupont", "given_name": "Jean",
    "certification": "C", "address": "12 Rue de la Paix 59000 Lille", "ban_id": "59350_6570_00012",
    "ban_type": "housenumber", "ban_score": 0.93, "citycode": "59350", "rnb_id": "ABCDEFGH1234",
    "fiscal_number": "591234567890", "surface": 80, "year": 1975, "ep_conso": 180, "energy_class": "D",
    "emissions": 20, "emissions_class": "C",
}
BASE = build_dpe(VALUES)


def ident(data: bytes) -> str:
    return identity(parse_dpe(data))


def test_a_value_is_its_whole_text_not_cut_at_a_comment_or_processing_instruction() -> None:
    martin = BASE.replace(b">Dupont<", b">X<!---->-Martin<")
    durand = BASE.replace(b">Dupont<", b">X<!-- c -->-Dur<?pi data?>and<")
    assert ident(martin) != ident(durand)
    assert ident(durand) == ident(BASE.replace(b">Dupont<", b">X-Durand<"))
    other = BASE.replace(b"<usr_logiciel_id>REG-1<", b"<usr_logiciel_id>REG-1<!---->-OTHER<")
    assert read_dpe(parse_dpe(other))["software_id"] == "REG-1-OTHER"
    # a tree not parsed by parse_dpe (comments kept) is read whole too: one helper, leaf_text
    raw = etree.fromstring(other)
    leaf = raw.find("administratif/diagnostiqueur/usr_logiciel_id")
    assert leaf is not None and leaf.text == "REG-1" and leaf_text(leaf) == "REG-1-OTHER"
    assert read_dpe(raw)["software_id"] == "REG-1-OTHER"
    assert identity(raw) == ident(BASE.replace(b">REG-1<", b">REG-1-OTHER<"))


HEATING = "<installation_chauffage><description>{}</description><conso_chauffage>{}</conso_chauffage>" \
          "</installation_chauffage>"
GAS = HEATING.format("Chaudière gaz à condensation", "0").encode()
WOOD = HEATING.format("Poêle bois", "12").encode()
TWO = BASE.replace(GAS, GAS + WOOD)  # a home with two heating installations
XSI = b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def test_the_base_documents_are_what_the_respellings_expect() -> None:
    assert GAS in BASE and WOOD in TWO and b"<date_etablissement_dpe>2027-03-01<" in BASE
    assert b"<label_brut>12 Rue de la Paix 59000 Lille<" in BASE and b"<surface_habitable_logement>80<" in BASE
    assert b"<consentement_formulaire>true<" in BASE and b"<annee_construction>1975<" in BASE


#: each: one way to re-spell a DPE (bytes → bytes) that leaves its meaning alone
RESPELLINGS: dict[str, Any] = {
    "xsi attribute on the root": lambda b, r: b.replace(b'<dpe version="2.6">', b'<dpe ' + XSI
                                                        + b' xsi:noNamespaceSchemaLocation="' + r + b'.xsd" version="2.6">'),
    "xsi attribute on a leaf": lambda b, r: b.replace(b'<dpe version="2.6">', b'<dpe ' + XSI + b' version="2.6">')
    .replace(b"<ubat>", b'<ubat xsi:schemaLocation="urn:x ' + r + b'.xsd">'),
    "date with a timezone": lambda b, r: b.replace(b"2027-03-01<", b"2027-03-01" + [b"Z", b"+00:00", b"+02:00",
                                                                                   b"-05:30"][r[0] % 4] + b"<"),
    "year with a timezone": lambda b, r: b.replace(b"1975<", b"1975" + [b"Z", b"+00:00", b"-11:00"][r[0] % 3] + b"<"),
    "white space between words": lambda b, r: b.replace(b"12 Rue de", b"12" + [b"  ", b"\n", b"\t ", b" \r\n "][r[0] % 4]
                                                         + b"Rue de"),
    "white space around a text": lambda b, r: b.replace(b"<label_brut>", b"<label_brut>\n  ").replace(
        b"Lille<", b"Lille \t<"),
    "NFD accents": lambda b, r: b.replace("Chaudière gaz à condensation".encode(),
                                          unicodedata.normalize("NFD", "Chaudière gaz à condensation").encode()),
    "-0 and 0.00 for zero": lambda b, r: b.replace(b"<conso_chauffage>0<", [b"<conso_chauffage>-0<",
                                                   b"<conso_chauffage>0.00<", b"<conso_chauffage>-0.0<"][r[0] % 3]),
    "number spellings": lambda b, r: b.replace(b"<surface_habitable_logement>80<", [
        b"<surface_habitable_logement>80.0<", b"<surface_habitable_logement>+080<",
        b"<surface_habitable_logement> 80.000000000000000000000000000000000 <"][r[0] % 3]),
    "true as 1": lambda b, r: b.replace(b"<consentement_formulaire>true<", b"<consentement_formulaire>1<"),
    "a comment inside a value": lambda b, r: b.replace(b">Dupont<", b">Dup<!--" + r + b"-->ont<"),
    "a processing instruction inside a value": lambda b, r: b.replace(b">Dupont<", b">Du<?x " + r + b"?>pont<"),
    "comments and indentation between elements": lambda b, r: b.replace(b"<logement>", b"\n  <!-- " + r
                                                                        + b" -->\n  <logement>\n    "),
    "no XML declaration": lambda b, r: b.split(b"?>", 1)[1].lstrip(),
    "heating installations in the other order": lambda b, r: b.replace(GAS + WOOD, WOOD + GAS),
    # invisible (Unicode Cf): a copy re-spelled with them was another DPE, its own number and data-received event
    "invisible characters in a text": lambda b, r: b.replace(b"12 Rue de", ["12 Ru\u200be de", "12 R\u00adue de",
                                                                            "1\u20602 Rue\ufeff de",
                                                                            "12\u200d Rue de"][r[0] % 4].encode()),
}
#: each: one change of a DPE's meaning: another DPE
CHANGES: dict[str, Any] = {
    "another surface, past 28 digits": lambda b: b.replace(b"<surface_habitable_logement>80<",
                                                           b"<surface_habitable_logement>80.00000000000000000000000000001<"),
    "another surface": lambda b: b.replace(b"<surface_habitable_logement>80<", b"<surface_habitable_logement>81<"),
    "another date": lambda b: b.replace(b"2027-03-01<", b"2027-03-02<"),
    "another year": lambda b: b.replace(b"1975<", b"1976<"),
    "false for true": lambda b: b.replace(b"<consentement_formulaire>true<", b"<consentement_formulaire>false<"),
    "a space inside a word": lambda b: b.replace(b"Rue de", b"R ue de"),
    "another case": lambda b: b.replace(b"Lille<", b"LILLE<"),
    "another accent": lambda b: b.replace("Poêle".encode(), "Poële".encode()),
    "a third heating installation": lambda b: b.replace(WOOD, WOOD + HEATING.format("Pompe à chaleur", "3").encode()),
    "one heating installation twice": lambda b: b.replace(WOOD, WOOD + WOOD),
    "a heating installation's value moved to the other": lambda b: b.replace(GAS + WOOD, (
        HEATING.format("Chaudière gaz à condensation", "12") + HEATING.format("Poêle bois", "0")).encode()),
    "a comment cutting another value": lambda b: b.replace(b">Dupont<", b">Dupont<!---->-Martin<"),
}


@pytest.mark.parametrize("name", sorted(RESPELLINGS))
def test_a_respelled_dpe_is_the_same_dpe(name: str) -> None:
    for salt in (b"a1", b"b2", b"c3", b"d4"):  # every variant of the respelling (they pick one by the salt's first byte)
        respelled = RESPELLINGS[name](TWO, salt)
        assert respelled != TWO
        assert ident(respelled) == ident(TWO), respelled.decode()


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_dpe_changed_anywhere_meaningful_is_another_dpe(name: str) -> None:
    changed = CHANGES[name](TWO)
    assert changed != TWO
    assert ident(changed) != ident(TWO), changed.decode()


@settings(max_examples=80, deadline=None, derandomize=True)
@given(names=st.lists(st.sampled_from(sorted(RESPELLINGS)), min_size=1, max_size=6, unique=True),
       salt=st.binary(min_size=1, max_size=8).map(lambda b: b.hex().encode()))
def test_any_combination_of_respellings_is_the_same_dpe(names: list[str], salt: bytes) -> None:
    respelled = TWO
    for name in names:
        respelled = RESPELLINGS[name](respelled, salt)
    assert ident(respelled) == ident(TWO), (names, respelled.decode())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(names=st.lists(st.sampled_from(sorted(RESPELLINGS)), max_size=5, unique=True),
       change=st.sampled_from(sorted(CHANGES)), salt=st.binary(min_size=1, max_size=8).map(lambda b: b.hex().encode()))
def test_a_change_of_meaning_is_another_dpe_however_it_is_spelled(names: list[str], change: str, salt: bytes) -> None:
    changed = CHANGES[change](TWO)
    for name in names:
        changed = RESPELLINGS[name](changed, salt)
    assert ident(changed) != ident(TWO), (change, names)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.decimals(allow_nan=False, allow_infinity=False), st.integers(min_value=0, max_value=40))
def test_a_number_is_compared_exactly_whatever_its_spelling(value: Decimal, zeros: int) -> None:
    plain = format(value, "f")
    spellings = [plain, (plain if "." in plain else plain + ".") + "0" * zeros, f"{value:E}".replace("E+", "E"),
                 ("+" + plain) if not plain.startswith("-") else plain]
    assert len({_value("ubat", s) for s in spellings}) == 1, spellings
    assert _value("ubat", plain) == _value("ubat", format(-value, "f")) or value != 0
    with localcontext(Context(prec=200)):  # a change at the 41st digit: past the default context's 28
        nudged = value + Decimal(1).scaleb(value.adjusted() - 40) if value else Decimal("1E-60")
    assert _value("ubat", format(nudged, "f")) != _value("ubat", plain)


def test_a_plain_dpe_keeps_the_identity_it_was_filed_under() -> None:
    """A DPE with none of the respellings above has the identity it had (an observatory's record stays found)."""
    assert ident(BASE) == "b717aa3b57ef0e7fc0475930657d2f09afeac19cac9d757bf0f8add6fe4b2617"


def test_a_year_with_a_timezone_is_read_as_its_year() -> None:
    """``2099Z`` is the year 2099: in the future (the coherence check read "2099Z" as no year)."""
    doc = read_dpe(parse_dpe(BASE.replace(b"1975<", b"2099Z<")))
    assert doc["year"] == "2099"
    assert any("annee_construction 2099 is in the future" in f["message"] for f in coherence(doc))


def test_the_model_schema_is_read_from_disk_once() -> None:
    """The validator, the typed elements and the declared attributes all come from one parse of the model XSD."""
    for cached in (dpe._model, dpe.schema, dpe._typed, dpe._attributes):
        cached.cache_clear()
    dpe.schema()
    dpe._typed()
    dpe._attributes()
    assert dpe._model.cache_info().misses == 1
    assert "surface_habitable_logement" in dpe._typed() and "version" in dpe._attributes()["dpe"]
