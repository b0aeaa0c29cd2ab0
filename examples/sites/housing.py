"""Simulated diagnosticians' firms: installations of labelled housing software filing real DPEs.

Each installation is registered through the sandbox's admin API (it gets an installation token), then files DPE
documents (the model v2.6 structure) with the production observatory (``/prod/observatory/dpe``), which emits
one CloudEvents data-received event (kind ``dpe``) per filed DPE.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import httpx

from conformity.packs.housing.dpe import build_dpe
from conformity.packs.housing.rules import dpe_class, single_class


@dataclass(frozen=True)
class Firm:
    siret: str
    size: str
    name: str


def _dpe(rng: random.Random, software: dict[str, str], index: int) -> bytes:
    ep, ges = round(rng.uniform(60, 420), 1), round(rng.uniform(4, 90), 1)
    number = rng.randint(1, 180)
    return build_dpe({
        "software_id": software["registration_id"], "software_version": software["version"], "family_name": "Lemaire",
        "given_name": "Camille", "certification": "CERT-20417", "address": f"{number} Rue Nationale 59000 Lille",
        "ban_id": f"59350_0991_{number:05d}", "ban_type": "housenumber", "ban_score": 0.93, "citycode": "59350",
        "rnb_id": "".join(rng.choice("123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(12)),
        "fiscal_number": f"59{rng.randint(0, 9)}{rng.randint(0, 10**9 - 1):09d}", "surface": round(rng.uniform(30, 140), 1),
        "year": rng.choice([1930, 1975, 2004]), "ep_conso": ep, "emissions": ges, "cost": round(ep * 9),
        "energy_class": dpe_class(ep, ges), "emissions_class": single_class(ges, [6, 11, 30, 50, 70, 100]),
        "date": f"2027-03-{index % 28 + 1:02d}"})


def simulate_firms(base_url: str, admin_token: str, *, verify: Any, vendor_id: str, software: dict[str, str],
                   wave: str, category: str, firms: list[Firm], dpes: int, seed: int = 11) -> list[dict[str, Any]]:
    """Register one installation per firm and file ``dpes`` DPEs from each; the installations."""
    rng = random.Random(seed)
    installations = []
    with httpx.Client(base_url=base_url, verify=verify, timeout=30) as client:
        admin = {"Authorization": f"Bearer {admin_token}"}
        for firm in firms:
            r = client.post("/admin/installations", headers=admin, json={
                "vendor_id": vendor_id, "software": software, "site": {"id": firm.siret, "size": firm.size,
                                                                       "name": firm.name},
                "wave": wave, "category": category})
            r.raise_for_status()
            inst = r.json()
            installations.append(inst)
            for i in range(dpes):
                r = client.post("/prod/observatory/dpe", content=_dpe(rng, software, i),
                                headers={"Authorization": f"Bearer {inst['token']}", "Content-Type": "application/xml"})
                r.raise_for_status()
    return installations
