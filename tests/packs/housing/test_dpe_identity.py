"""A DPE's identity is its meaning (:func:`conformity.packs.housing.dpe.identity`), and its values are read whole.

QA: one DPE re-spelled (an xsi attribute, a timezone on its date, two spaces, NFD accents, -0, its heating
installations in another order) was filed again under a new number, each filing a paid data-received event; a comment
inside a value cut it (lxml's ``.text``), so two different DPEs were one and a DPE naming ``REG-1<!---->-OTHER``
passed for software REG-1.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from conformity.packs.housing.dpe import build_dpe, identity, leaf_text, parse_dpe, read_dpe

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
