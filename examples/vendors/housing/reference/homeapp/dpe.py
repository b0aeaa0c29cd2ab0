"""Establishing and filing a DPE: the home located, the document written (model v2.6), tested, then filed."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from lxml import etree

from homeapp import defects
from homeapp.buildings import by_address
from homeapp.context import App, ServiceError

#: upper bounds (exclusive) of classes A..F: primary energy kWh/m²/yr, emissions kgCO2/m²/yr
ENERGY = (70, 110, 180, 250, 330, 420)
EMISSIONS = (6, 11, 30, 50, 70, 100)
BLOCKING = ("erreur_logiciel", "erreur_saisie")
NO_TEST = defects.register("files-without-test", "files DPEs for real at once, without the observatory's test mode")
OWN_NUMBER = defects.register("keeps-own-number", "keeps its own file number instead of the observatory's DPE number")
PRODUCT_NAME = defects.register(
    "product-name-as-id", "writes its product name as usr_logiciel_id instead of its registration id"
)
ENERGY_ONLY = defects.register("class-from-energy-only", "computes the label from primary energy alone")
BOUNDS_INCLUSIVE = defects.register(
    "class-bounds-inclusive", "reads each class's upper bound as inside the class (<= instead of <)"
)
HIDE_WARNINGS = defects.register(
    "hides-warnings", "shows the observatory's blocking findings only, never its warnings ('nothing to act on')"
)


def grade(value: float, bounds: tuple[int, ...]) -> str:
    if defects.active(BOUNDS_INCLUSIVE):
        return next((c for c, b in zip("ABCDEF", bounds, strict=True) if value <= b), "G")
    return next((c for c, b in zip("ABCDEF", bounds, strict=True) if value < b), "G")


def label(ep: float, ges: float) -> str:
    if defects.active(ENERGY_ONLY):
        return grade(ep, ENERGY)
    return max(grade(ep, ENERGY), grade(ges, EMISSIONS))


def _add(parent: etree._Element, tag: str, text: Any) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.text = str(text)
    return el


def document(app: App, location: dict[str, Any], rnb_id: str, fiscal: str, visit: dict[str, Any]) -> bytes:
    pro = app.my_professional()
    root = etree.Element("dpe", version="2.6")
    adm = etree.SubElement(root, "administratif")
    _add(adm, "date_etablissement_dpe", dt.date.today().isoformat())
    _add(adm, "enum_modele_dpe_id", 1)
    diag = etree.SubElement(adm, "diagnostiqueur")
    _add(
        diag,
        "usr_logiciel_id",
        app.software["name"] if defects.active(PRODUCT_NAME) else app.software["registration_id"],
    )
    _add(diag, "version_logiciel", app.software["version"])
    _add(diag, "nom_diagnostiqueur", pro.get("usual_name", "?"))
    _add(diag, "prenom_diagnostiqueur", pro.get("given_name", "?"))
    _add(diag, "numero_certification_diagnostiqueur", pro.get("certification") or "?")
    geo = etree.SubElement(adm, "geolocalisation")
    address = etree.SubElement(geo, "adresse_bien")
    _add(address, "label_brut", location.get("label") or "?")
    _add(address, "ban_id", location["cle_interop"])
    _add(address, "ban_type", location["type"])
    _add(address, "ban_score", location["score"])
    _add(address, "ban_citycode", location.get("citycode") or "")
    if rnb_id:
        _add(geo, "rnb_id", rnb_id)
    _add(geo, "numero_fiscal_local", fiscal)
    _add(adm, "consentement_formulaire", "true")
    logement = etree.SubElement(root, "logement")
    general = etree.SubElement(logement, "caracteristique_generale")
    _add(general, "annee_construction", visit["year"])
    _add(general, "surface_habitable_logement", f"{visit['surface']:g}")
    _add(general, "nombre_niveau_logement", 1)
    _add(etree.SubElement(logement, "enveloppe"), "ubat", "0.8")
    heating = etree.SubElement(
        etree.SubElement(logement, "installation_chauffage_collection"), "installation_chauffage"
    )
    _add(heating, "description", "Chaudière gaz")
    _add(heating, "conso_chauffage", f"{round(visit['ep_conso'] * 0.6, 1):g}")
    sortie = etree.SubElement(logement, "sortie")
    ep = etree.SubElement(sortie, "ep_conso")
    _add(ep, "ep_conso_5_usages_m2", f"{visit['ep_conso']:g}")
    _add(ep, "classe_bilan_dpe", label(visit["ep_conso"], visit["emissions"]))
    ges = etree.SubElement(sortie, "emission_ges")
    _add(ges, "emission_ges_5_usages_m2", f"{visit['emissions']:g}")
    _add(ges, "classe_emission_ges", grade(visit["emissions"], EMISSIONS))
    _add(etree.SubElement(sortie, "cout"), "cout_5_usages", f"{visit['cost']:g}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def shown(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": f["type"], "message": str(f.get("message", "")), "thematique": str(f.get("thematique", ""))}
        for f in findings
        if isinstance(f, dict) and f.get("type") and (f["type"] in BLOCKING or not defects.active(HIDE_WARNINGS))
    ]


def file_dpe(app: App, data: dict[str, Any]) -> dict[str, Any]:
    try:
        found = by_address(app, data["address"])
        if found["status"] != "ok" and not (
            found.get("location") and found["status"] == "incomplete" and defects.active("ignores-geocoding-type")
        ):
            return {"filed": False, "error": f"the home could not be located: {found['status']}"}
        body = document(app, found["location"], found.get("rnb_id", ""), data["fiscal_number"], data["visit"])
        xml = {"Content-Type": "application/xml"}
        findings: list[dict[str, Any]] = []
        if not defects.active(NO_TEST):
            r = app.call("POST", "observatory", "/dpe", params={"mode": "test"}, content=body, headers=xml)
            if r.status_code != 200:
                return {"filed": False, "error": f"observatory test answered {r.status_code}"}
            findings = shown(r.json().get("controle_coherence", []))
            if any(f["type"] in BLOCKING for f in findings):
                return {"filed": False, "findings": findings, "error": "blocking coherence findings"}
        r = app.call("POST", "observatory", "/dpe", params={"mode": "real"}, content=body, headers=xml)
        if r.status_code != 201:
            refused = r.json() if r.headers.get("content-type", "").endswith("json") else {}
            return {
                "filed": False,
                "findings": shown(refused.get("controle_coherence", [])),
                "error": f"observatory answered {r.status_code}",
            }
        answer = r.json()
        if not findings:
            findings = shown(answer.get("warnings", []))
    except ServiceError as exc:
        return {"filed": False, "error": str(exc)}
    number = f"F{secrets.randbelow(10**9):09d}" if defects.active(OWN_NUMBER) else answer["numero_dpe"]
    return {
        "filed": True,
        "numero_dpe": number,
        "energy_class": label(data["visit"]["ep_conso"], data["visit"]["emissions"]),
        "findings": findings,
    }
