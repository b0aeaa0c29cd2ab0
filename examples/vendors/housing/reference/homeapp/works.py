"""Quotes in the harmonised format, and works recorded for the carnet d'information du logement."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from homeapp import defects
from homeapp.buildings import by_address
from homeapp.consent import consent_for
from homeapp.context import App, ServiceError

LABELS = {
    "ISO-COMBLES": "Isolation des combles perdus (R ≥ 7 m².K/W)",
    "ISO-TOITURE": "Isolation de la toiture",
    "ISO-MURS-EXT": "Isolation des murs par l'extérieur",
    "ISO-MURS-INT": "Isolation des murs par l'intérieur",
    "MENUISERIES": "Remplacement des fenêtres (Uw ≤ 1,3)",
    "ISO-PLANCHER-BAS": "Isolation du plancher bas",
    "PAC-AIR-EAU": "Pompe à chaleur air/eau",
    "CHAUDIERE-BIOMASSE": "Chaudière biomasse",
    "CHAUFFE-EAU-THERMO": "Chauffe-eau thermodynamique",
    "VMC-DOUBLE-FLUX": "VMC double flux",
    "SOLAIRE-THERMIQUE": "Chauffe-eau solaire",
    "REGULATION": "Régulation du chauffage",
}
CATEGORY = {
    "ISO-COMBLES": "roof",
    "ISO-TOITURE": "roof",
    "ISO-MURS-EXT": "walls",
    "ISO-MURS-INT": "walls",
    "MENUISERIES": "glazing",
    "ISO-PLANCHER-BAS": "low_floor",
    "PAC-AIR-EAU": "heating",
    "CHAUDIERE-BIOMASSE": "heating",
    "REGULATION": "heating",
    "CHAUFFE-EAU-THERMO": "hot_water",
    "VMC-DOUBLE-FLUX": "ventilation",
    "SOLAIRE-THERMIQUE": "renewable",
}
FLAT_VAT = defects.register("vat-at-20-percent", "computes the quote's VAT at 20 % whatever each item's rate")
ONE_CATEGORY = defects.register("works-all-heating", "records every works item under 'heating'")


def _money(value: float) -> float:
    return round(value + 1e-9, 2)


def home_address(app: App, household: str) -> str | None:
    return next((h["address"] for h in app.fixtures.get("homes", []) if h["fiscal_number"] == household), None)


def send_quote(app: App, data: dict[str, Any]) -> dict[str, Any]:
    household = data["household"]
    consent = consent_for(app, household, "quote")
    if consent is None:
        return {"sent": False, "error": "no consent covers quotes for this home"}
    try:
        pro = app.my_professional()
        address = home_address(app, household)
        located = by_address(app, address) if address else {"status": "no_result"}
        items = []
        for g in data["gestes"]:
            total = _money(g["quantity"] * g["unit_price_ht"])
            items.append(
                {
                    "code": g["code"],
                    "label": LABELS.get(g["code"], g["code"]),
                    "quantity": g["quantity"],
                    "unit": g["unit"],
                    "unit_price_ht": g["unit_price_ht"],
                    "vat_rate": g["vat_rate"],
                    "total_ht": total,
                }
            )
        ht = _money(sum(i["total_ht"] for i in items))
        vat = (
            _money(ht * 0.2)
            if defects.active(FLAT_VAT)
            else _money(sum(i["total_ht"] * i["vat_rate"] / 100 for i in items))
        )
        today = dt.date.today()
        quote: dict[str, Any] = {
            "format": "usine.housing.quote/1",
            "quote_id": f"Q-{secrets.token_hex(6)}",
            "issued": today.isoformat(),
            "valid_until": (today + dt.timedelta(days=data["valid_days"])).isoformat(),
            "contractor": {
                "siret": pro["siret"],
                "name": f"{pro.get('usual_name', '')} Rénovation",
                "rge": pro.get("rge") or "",
                "insurance": "Décennale MAF n° 2027-118",
            },
            "home": {"fiscal_number": household, **({"rnb_id": located["rnb_id"]} if located.get("rnb_id") else {})},
            "gestes": items,
            "total_ht": ht,
            "total_vat": vat,
            "total_ttc": _money(ht + vat),
            "mentions": {
                "rge_scope": "Qualification RGE couvrant les gestes du devis",
                "insurance": "Assurance décennale, couverture France entière",
                "payment_terms": "30 % à la commande, solde à la réception",
                "aid_notice": "Devis éligible aux aides à la rénovation sous conditions",
            },
        }
        r = app.call(
            "POST", "dataspace", f"/homes/{household}/quotes", json=quote, headers={"Consent-Id": consent["consent_id"]}
        )
    except ServiceError as exc:
        return {"sent": False, "error": str(exc)}
    if r.status_code not in (200, 201):
        return {"sent": False, "error": f"data space answered {r.status_code}"}
    app.quotes[quote["quote_id"]] = quote | {"rnb_id": located.get("rnb_id")}
    return {"sent": True, "quote_id": quote["quote_id"]}


def record_works(app: App, data: dict[str, Any]) -> dict[str, Any]:
    household, quote = data["household"], app.quotes.get(data["quote_id"])
    consent = consent_for(app, household, "works")
    if consent is None or quote is None:
        return {"recorded": False, "error": "no consent covers works for this home, or the quote is unknown"}
    by_category: dict[str, list[str]] = {}
    for item in quote["gestes"]:
        category = "heating" if defects.active(ONE_CATEGORY) else CATEGORY.get(item["code"], "other")
        by_category.setdefault(category, []).append(item["code"])
    ids = []
    try:
        for category, codes in sorted(by_category.items()):
            works = {
                "format": "usine.housing.works/1",
                "works_id": f"W-{secrets.token_hex(6)}",
                "category": category,
                "gestes": codes,
                "completed": data["completed"],
                "contractor_siret": app.my_professional()["siret"],
                "rnb_id": quote.get("rnb_id") or "",
                "quote_id": quote["quote_id"],
                "attestation": f"Attestation de fin de travaux {quote['quote_id']}",
            }
            r = app.call(
                "POST",
                "dataspace",
                f"/homes/{household}/works",
                json=works,
                headers={"Consent-Id": consent["consent_id"]},
            )
            if r.status_code not in (200, 201):
                return {"recorded": False, "error": f"data space answered {r.status_code}"}
            ids.append(works["works_id"])
    except ServiceError as exc:
        return {"recorded": False, "error": str(exc)}
    return {"recorded": True, "works_id": ids[0]}
