"""Simulated care sites: installations of labelled software sending real documents to the sandbox.

Each installation is registered through the sandbox's admin API (it gets an installation token),
then sends CDA R2 documents to the production document-sharing service (``/prod/dmp/documents``),
which emits one CloudEvents data-received event per accepted document.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import httpx

from conformity.packs.health.ins import OID_TEST_NIR, nir_key
from sandbox.packs.health.samples import build_cda, submission


@dataclass(frozen=True)
class Site:
    site_id: str
    size: str
    name: str


def _patient(rng: random.Random) -> dict[str, Any]:
    body = f"{rng.choice('12')}{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}75056{rng.randint(1, 999):03d}"
    return {"ins": body + nir_key(body), "oid": OID_TEST_NIR,
            "traits": {"birth_name": "DUPONT", "first_names": "MARIE", "birth_date": "1970-01-01", "sex": "F",
                       "birth_place_code": "75056"}}


def simulate_sites(base_url: str, admin_token: str, *, verify: Any, vendor_id: str, software: dict[str, str],
                   wave: str, category: str, sites: list[Site], documents: int, type_code: str = "34106-7",
                   seed: int = 7) -> list[dict[str, Any]]:
    """Register one installation per site and send ``documents`` documents from each; the installations."""
    rng = random.Random(seed)
    author = {"national_id": "810000000017", "family_name": "MARTIN", "given_name": "Claire"}
    installations = []
    with httpx.Client(base_url=base_url, verify=verify, timeout=30) as client:
        admin = {"Authorization": f"Bearer {admin_token}"}
        for site in sites:
            r = client.post("/admin/installations", headers=admin, json={
                "vendor_id": vendor_id, "software": software, "site": {"id": site.site_id, "size": site.size,
                                                                       "name": site.name},
                "wave": wave, "category": category})
            r.raise_for_status()
            inst = r.json()
            installations.append(inst)
            custodian = {"finess": site.site_id, "name": site.name}
            for i in range(documents):
                when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=documents - i)
                doc = build_cda(_patient(rng), author, custodian, type_code=type_code, effective_time=when,
                                title=f"Compte rendu {i + 1}")
                body = submission(doc, site_id=site.site_id, software={
                    "name": software["name"], "version": software["version"],
                    "registration_id": software["registration_id"]})
                r = client.post("/prod/dmp/documents", json=body, headers={"Authorization": f"Bearer {inst['token']}"})
                r.raise_for_status()
    return installations
