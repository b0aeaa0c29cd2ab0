"""Simulated diagnosticians' firms (housing pack): DPEs filed with the production observatory.

``simulate.simulate_sites(..., produce=dpes)``: each item is one DPE document (the model v2.6 structure) posted to
``/prod/observatory/dpe`` (one data-received event of kind ``dpe`` per filed DPE); a firm is a site whose id is its
SIRET.
"""

from __future__ import annotations

import random

from simulate import Send, Site

from conformity.packs.housing.dpe import build_dpe
from conformity.packs.housing.rules import dpe_class, single_class


def dpes(rng: random.Random, software: dict[str, str], site: Site, index: int, count: int) -> Send:
    """One DPE a diagnostician of the firm files (random home, classes recomputed from its figures)."""
    ep, ges = round(rng.uniform(60, 420), 1), round(rng.uniform(4, 90), 1)
    number = rng.randint(1, 180)
    document = build_dpe({
        "software_id": software["registration_id"], "software_version": software["version"], "family_name": "Lemaire",
        "given_name": "Camille", "certification": "CERT-20417", "address": f"{number} Rue Nationale 59000 Lille",
        "ban_id": f"59350_0991_{number:05d}", "ban_type": "housenumber", "ban_score": 0.93, "citycode": "59350",
        "rnb_id": "".join(rng.choice("123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(12)),
        "fiscal_number": f"59{rng.randint(0, 9)}{rng.randint(0, 10**9 - 1):09d}", "surface": round(rng.uniform(30, 140), 1),
        "year": rng.choice([1930, 1975, 2004]), "ep_conso": ep, "emissions": ges, "cost": round(ep * 9),
        "energy_class": dpe_class(ep, ges), "emissions_class": single_class(ges, [6, 11, 30, 50, 70, 100]),
        "date": f"2027-03-{index % 28 + 1:02d}"})
    return Send("/prod/observatory/dpe", content=document, headers={"Content-Type": "application/xml"})
