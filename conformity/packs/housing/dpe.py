"""The DPE exchange document (usine's model after the observatory's v2.6 structure): build, parse, check.

:func:`build_dpe` writes a document from plain values (the reference client and the tests use it);
:func:`parse_dpe` parses untrusted bytes safely (:mod:`conformity.xmlsafe`) and validates them against the
model schema ``schemas/dpe-model-2.6.xsd``; :func:`read_dpe` gives the values checks and the observatory
read; :func:`coherence` is the observatory's "contrôle de cohérence": blocking findings (``erreur_logiciel``,
``erreur_saisie``) and warnings (``warning_logiciel``, ``warning_saisie``), each with ``thematique``,
``message`` and ``objets_concerne``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from conformity.packs.housing.rules import dpe_class, single_class
from conformity.signing import canonical_json
from conformity.text import as_read
from conformity.xmlsafe import parse_xml

XSD_PATH = Path(__file__).resolve().parent / "schemas" / "dpe-model-2.6.xsd"
MAX_BYTES = 512 * 1024
MAX_DEPTH = 16
BLOCKING = ("erreur_logiciel", "erreur_saisie")
WARNINGS = ("warning_logiciel", "warning_saisie")
#: below this geocoding score a DPE is filed with a warning (parameter of HOUSINGID-007 / DPE-009)
LOW_SCORE = 0.7


@functools.cache
def _model() -> etree._ElementTree:
    """The model DPE schema's tree, parsed once (a file of this package, so trusted): compiled by :func:`schema`,
    read by :func:`_typed` and :func:`_attributes`."""
    return etree.parse(str(XSD_PATH))


@functools.cache
def schema() -> etree.XMLSchema:
    """The model DPE schema, compiled once."""
    return etree.XMLSchema(_model())


class DpeInvalid(ValueError):
    """Bytes that are not a DPE document of the model: not XML, hostile XML, or not valid against the schema."""

    def __init__(self, message: str, errors: list[str]):
        super().__init__(message)
        self.errors = errors


def parse_dpe(data: bytes) -> etree._Element:
    """The root of a DPE document valid against the model schema, or DpeInvalid with every schema error.

    Comments and processing instructions are dropped once the document is valid, their surrounding text merged:
    ``X<!---->-Durand`` is the value ``X-Durand``, as the schema validated it (lxml's ``.text`` alone stops at the
    first comment or instruction). Every reader of a DPE (:func:`read_dpe`, :func:`identity`) reads values through
    :func:`leaf_text` as well, so a tree parsed elsewhere is read whole too."""
    try:
        root = parse_xml(data, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH, source="DPE document")
    except Exception as exc:  # XMLSecurityError: not well-formed, DTD, entities, too large or deep
        raise DpeInvalid(str(exc), [str(exc)]) from None
    xsd = schema()
    if not xsd.validate(root):
        errors = [f"line {e.line}: {e.message}" for e in xsd.error_log][:20]
        raise DpeInvalid("the document is not valid against the DPE model schema (v2.6)", errors)
    etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)
    return root


def read_written(data: bytes) -> dict[str, Any] | None:
    """What a DPE document writes (:func:`read_dpe`), valid against the model schema or not; None when it is no XML
    the safe parser reads. The rules on its values (the class, the software, the certification...) are judged on a
    document the schema refuses too: its one unknown element is the model's breach, not theirs."""
    try:
        root = parse_xml(data, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH, source="DPE document")
    except Exception:  # XMLSecurityError: not well-formed, DTD, entities, too large or deep
        return None
    etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)
    return read_dpe(root)


def leaf_text(el: etree._Element) -> str:
    """An element's whole own text: every text node, not lxml's ``.text`` (which stops at the first comment or
    processing instruction): the text, then the tail of each comment or instruction inside (a leaf of the model has
    no element children)."""
    return (el.text or "") + "".join(c.tail or "" for c in el if not isinstance(c.tag, str))


XS = "{http://www.w3.org/2001/XMLSchema}"
#: the XML Schema types whose values are numbers, and the model's simple types derived from them
NUMERIC = {"xs:decimal", "xs:integer", "xs:positiveInteger", "xs:nonNegativeInteger"}
#: the XML Schema calendar types whose values are a day or a year (their optional timezone is dropped: see identity)
CALENDAR = {"xs:date": "date", "xs:gYear": "year"}
#: a trailing timezone on an xs:date or xs:gYear value: Z, +hh:mm or -hh:mm
_TIMEZONE = re.compile(r"(Z|[+-]\d\d:\d\d)\Z")
#: model elements whose repeated occurrences are in a meaningful order (none: the model's only repeated element,
#: installation_chauffage, is one of the home's heating installations, a set; the schema says nothing of an order)
ORDERED: frozenset[str] = frozenset()
#: past this exponent a number's normal form is written with an exponent (bounded, whatever the spelling)
_PLAIN_EXPONENT = 100


@functools.cache
def _typed() -> dict[str, str]:
    """Element name → "number", "boolean", "date" or "year", for the model's elements whose value is one (read from
    the schema)."""
    xsd = _model().getroot()
    numeric = set(NUMERIC)
    for simple in xsd.iter(XS + "simpleType"):
        restriction = simple.find(XS + "restriction")
        if restriction is not None and restriction.get("base") in NUMERIC:
            numeric.add(simple.get("name", ""))
    kinds: dict[str, set[str]] = {}
    for element in xsd.iter(XS + "element"):
        type_ = element.get("type")
        kind = "number" if type_ in numeric else "boolean" if type_ == "xs:boolean" else CALENDAR.get(type_ or "", "text")
        kinds.setdefault(element.get("name", ""), set()).add(kind)
    return {name: next(iter(k)) for name, k in kinds.items() if len(k) == 1 and k != {"text"}}


@functools.cache
def _attributes() -> dict[str, frozenset[str]]:
    """Element name → the attributes the model schema declares on it (``dpe``: ``version``); any other attribute a
    valid document may carry (the XML Schema instance ones, ``xsi:*``) says nothing about the DPE."""
    xsd = _model().getroot()
    declared: dict[str, set[str]] = {}
    for element in xsd.iter(XS + "element"):
        names = declared.setdefault(element.get("name", ""), set())
        for complex_type in element.findall(XS + "complexType"):
            for attribute in complex_type.findall(XS + "attribute") + complex_type.findall(f"{XS}*/{XS}*/{XS}attribute"):
                names.add(attribute.get("name", ""))
    return {name: frozenset(names) for name, names in declared.items()}


def _decimal(text: str) -> str:
    """A number's exact normal form (ValueError if it is none): 80, 80.0, +080 and 8E1 are "80"; -0 is "0"; no
    rounding at any number of digits (``Decimal.normalize`` rounds to its context's 28 digits)."""
    try:
        number = Decimal(text)  # exact: a string is read digit for digit, whatever the context
    except InvalidOperation:
        raise ValueError(text) from None
    if not number.is_finite():
        raise ValueError(text)
    if number.is_zero():
        return "0"
    sign, digits, spelled = number.as_tuple()
    kept, exponent = list(digits), int(spelled)  # finite: an int exponent
    while kept[-1] == 0:
        kept.pop()
        exponent += 1
    if abs(exponent) <= _PLAIN_EXPONENT:
        return format(Decimal((sign, tuple(kept), exponent)), "f")
    return f"{'-' if sign else ''}{''.join(map(str, kept))}E{exponent}"


def _value(name: str, text: str) -> str | bool:
    """A leaf's value as the schema means it: numbers without their spelling (80, 80.0 and 8E1 are one value, -0 is
    0), booleans (true and 1 are one), a day or a year without a timezone, text in NFC with its white space
    collapsed."""
    kind = _typed().get(name)
    text = text.strip()
    if kind == "boolean":
        return text in ("true", "1")
    if kind in ("date", "year"):
        text = _TIMEZONE.sub("", text)
    if kind in ("number", "year"):
        try:
            return _decimal(text)
        except ValueError:
            return as_read(text)
    return as_read(text)


def _meaning(el: etree._Element) -> list[object]:
    name = str(el.tag)
    declared = _attributes().get(name, frozenset())
    attributes = {k: as_read(v) for k, v in sorted(el.attrib.items()) if k in declared}
    children = [c for c in el if isinstance(c.tag, str) and c.tag != "numero_dpe"]
    if not children:
        return [name, attributes, _value(name, leaf_text(el))]
    groups: dict[str, list[list[object]]] = {}
    for child in children:  # the schema's sequence fixes the order of different elements: kept
        groups.setdefault(str(child.tag), []).append(_meaning(child))
    content: list[list[object]] = []
    for tag, meanings in groups.items():  # repeated elements are a set of things unless the model says otherwise
        content += meanings if tag in ORDERED else sorted(meanings, key=canonical_json)
    return [name, attributes, content]


def identity(root: etree._Element) -> str:
    """What makes a (schema-valid) DPE the same DPE: the SHA-256 of the canonical JSON of its meaning, never of its
    bytes nor of the numero_dpe the observatory gave it (a number names a filed DPE: it is not part of what was
    filed). Its meaning is every element with its values as the schema types them:

    * the attributes the model schema declares (``version``), not the XML Schema instance ones (``xsi:*``, which
      any valid document may carry with any value) nor any other;
    * each value whole (comments and processing instructions inside do not cut it, :func:`leaf_text`);
    * text in Unicode NFC with every run of white space one space and none around (``Chaudière`` composed or not,
      two spaces or a line break between two words of an address: one value);
    * numbers exactly, as decimals (80, 80.0, 8E1 are one; -0 is 0; no rounding, at any number of digits), booleans
      (true and 1);
    * a day (xs:date) or a year (xs:gYear) without its timezone, whichever it is: ``2027-03-01``, ``2027-03-01Z``,
      ``2027-03-01+02:00`` are the day a DPE was made, ``1975Z`` the year a building was built (a timezone says
      nothing of either; kept, one DPE would be filed once per offset);
    * repeated elements of one name (the heating installations) as a set: in any order (none of the model's is
      ordered, :data:`ORDERED`); different elements in the schema's order (a valid document has no other).

    Neither the XML declaration, encoding, indentation, comments, attribute order nor number spelling change it."""
    return hashlib.sha256(canonical_json(_meaning(root))).hexdigest()


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path)
    return None if found is None else leaf_text(found).strip()


def _number(root: etree._Element, path: str) -> float | None:
    value = _text(root, path)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _year(value: str | None) -> str | None:
    """An xs:gYear without its timezone (``2099Z`` is the year 2099, in the future too)."""
    return None if value is None else _TIMEZONE.sub("", value)


def read_dpe(root: etree._Element) -> dict[str, Any]:
    """The values of a (schema-valid) DPE document that checks and the observatory read."""
    geo = "administratif/geolocalisation/"
    diag = "administratif/diagnostiqueur/"
    return {
        "numero_dpe": _text(root, "numero_dpe"),
        "software_id": _text(root, diag + "usr_logiciel_id"),
        "software_version": _text(root, diag + "version_logiciel"),
        "certification": _text(root, diag + "numero_certification_diagnostiqueur"),
        "ban_id": _text(root, geo + "adresse_bien/ban_id"),
        "ban_type": _text(root, geo + "adresse_bien/ban_type"),
        "ban_score": _number(root, geo + "adresse_bien/ban_score"),
        "rnb_id": _text(root, geo + "rnb_id"),
        "fiscal_number": _text(root, geo + "numero_fiscal_local"),
        "surface": _number(root, "logement/caracteristique_generale/surface_habitable_logement"),
        "year": _year(_text(root, "logement/caracteristique_generale/annee_construction")),
        "ep_conso": _number(root, "logement/sortie/ep_conso/ep_conso_5_usages_m2"),
        "energy_class": _text(root, "logement/sortie/ep_conso/classe_bilan_dpe"),
        "emissions": _number(root, "logement/sortie/emission_ges/emission_ges_5_usages_m2"),
        "emissions_class": _text(root, "logement/sortie/emission_ges/classe_emission_ges"),
    }


def finding(kind: str, thematique: str, message: str, *objets: str) -> dict[str, Any]:
    return {"type": kind, "thematique": thematique, "message": message, "objets_concerne": list(objets)}


def coherence(doc: Mapping[str, Any], *, low_score: float = LOW_SCORE, this_year: int = 2027) -> list[dict[str, Any]]:
    """The observatory's coherence findings on a schema-valid document's values (empty: nothing to say)."""
    out: list[dict[str, Any]] = []
    ep, ges = doc.get("ep_conso"), doc.get("emissions")
    if ep is not None and ges is not None:
        expected = dpe_class(ep, ges)
        if doc.get("energy_class") != expected:
            out.append(
                finding(
                    "erreur_logiciel",
                    "sortie",
                    f"classe_bilan_dpe {doc.get('energy_class')} differs from "
                    f"the class of the double threshold ({expected} for {ep:g} kWh/m²/an and {ges:g} "
                    "kgCO2/m²/an)",
                    "sortie/ep_conso/classe_bilan_dpe",
                )
            )
        ges_class = single_class(ges, [6, 11, 30, 50, 70, 100])
        if doc.get("emissions_class") != ges_class:
            out.append(
                finding(
                    "erreur_logiciel",
                    "sortie",
                    f"classe_emission_ges {doc.get('emissions_class')} differs "
                    f"from {ges_class} for {ges:g} kgCO2/m²/an",
                    "sortie/emission_ges/classe_emission_ges",
                )
            )
    if not doc.get("surface"):
        out.append(
            finding(
                "erreur_saisie",
                "caracteristique_generale",
                "surface_habitable_logement must be positive",
                "caracteristique_generale/surface_habitable_logement",
            )
        )
    year = doc.get("year")
    if year and year.isdigit() and int(year) > this_year:
        out.append(
            finding(
                "erreur_saisie",
                "caracteristique_generale",
                f"annee_construction {year} is in the future",
                "caracteristique_generale/annee_construction",
            )
        )
    if doc.get("ban_type") != "housenumber":
        out.append(
            finding(
                "erreur_saisie",
                "geolocalisation",
                f"incomplete geocoding: the address is located at {doc.get('ban_type')} level, not at a house number",
                "geolocalisation/adresse_bien",
            )
        )
    elif (doc.get("ban_score") or 0) < low_score:
        out.append(
            finding(
                "warning_saisie",
                "geolocalisation",
                f"low geocoding score {doc.get('ban_score')} (below {low_score}): check the address",
                "geolocalisation/adresse_bien/ban_score",
            )
        )
    if not doc.get("rnb_id"):
        out.append(
            finding(
                "warning_logiciel",
                "geolocalisation",
                "no RNB building id: the DPE cannot be tied to its building in the national registry",
                "geolocalisation/rnb_id",
            )
        )
    return out


def blocking(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f.get("type") in BLOCKING]


def build_dpe(values: Mapping[str, Any]) -> bytes:
    """A DPE document from plain values (keys of :func:`read_dpe`, plus names and the date)."""
    root = etree.Element("dpe", version="2.6")
    if values.get("numero_dpe"):
        etree.SubElement(root, "numero_dpe").text = values["numero_dpe"]
    adm = etree.SubElement(root, "administratif")
    etree.SubElement(adm, "date_etablissement_dpe").text = values.get("date", "2027-03-01")
    etree.SubElement(adm, "enum_modele_dpe_id").text = "1"
    diag = etree.SubElement(adm, "diagnostiqueur")
    for tag, key in (
        ("usr_logiciel_id", "software_id"),
        ("version_logiciel", "software_version"),
        ("nom_diagnostiqueur", "family_name"),
        ("prenom_diagnostiqueur", "given_name"),
        ("numero_certification_diagnostiqueur", "certification"),
    ):
        etree.SubElement(diag, tag).text = str(values.get(key, ""))
    geo = etree.SubElement(adm, "geolocalisation")
    address = etree.SubElement(geo, "adresse_bien")
    etree.SubElement(address, "label_brut").text = values.get("address", "")
    etree.SubElement(address, "ban_id").text = values.get("ban_id", "")
    etree.SubElement(address, "ban_type").text = values.get("ban_type", "housenumber")
    etree.SubElement(address, "ban_score").text = f"{values.get('ban_score', 0):g}"
    etree.SubElement(address, "ban_citycode").text = values.get("citycode", "")
    if values.get("rnb_id"):
        etree.SubElement(geo, "rnb_id").text = values["rnb_id"]
    if values.get("fiscal_number"):
        etree.SubElement(geo, "numero_fiscal_local").text = values["fiscal_number"]
    etree.SubElement(adm, "consentement_formulaire").text = "true"
    logement = etree.SubElement(root, "logement")
    general = etree.SubElement(logement, "caracteristique_generale")
    etree.SubElement(general, "annee_construction").text = str(values.get("year", "1975"))
    etree.SubElement(general, "surface_habitable_logement").text = f"{values.get('surface', 0):g}"
    etree.SubElement(general, "nombre_niveau_logement").text = "1"
    envelope = etree.SubElement(logement, "enveloppe")
    etree.SubElement(envelope, "ubat").text = f"{values.get('ubat', 0.8):g}"
    heating = etree.SubElement(
        etree.SubElement(logement, "installation_chauffage_collection"), "installation_chauffage"
    )
    etree.SubElement(heating, "description").text = values.get("heating", "Chaudière gaz à condensation")
    etree.SubElement(heating, "conso_chauffage").text = f"{values.get('heating_use', 0):g}"
    sortie = etree.SubElement(logement, "sortie")
    ep = etree.SubElement(sortie, "ep_conso")
    etree.SubElement(ep, "ep_conso_5_usages_m2").text = f"{values['ep_conso']:g}"
    etree.SubElement(ep, "classe_bilan_dpe").text = values["energy_class"]
    ges = etree.SubElement(sortie, "emission_ges")
    etree.SubElement(ges, "emission_ges_5_usages_m2").text = f"{values['emissions']:g}"
    etree.SubElement(ges, "classe_emission_ges").text = values["emissions_class"]
    cost = etree.SubElement(sortie, "cout")
    etree.SubElement(cost, "cout_5_usages").text = f"{values.get('cost', 0):g}"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
