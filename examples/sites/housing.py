"""Simulated housing firms (housing pack): diagnosticians file DPEs, advisers transfer consumption data.

``simulate.simulate_sites(..., produce=dpes)``: each item is one DPE document (the model v2.6 structure) posted to
``/prod/observatory/dpe`` (one data-received event of kind ``dpe`` per DPE filed for the first time; a DPE filed
again is a duplicate, no event); a firm is a site whose id is its SIRET.

``simulate.simulate_sites(..., setup=household_consent, produce=transfers)``: an adviser's installation first asks
the household (played by the sandbox) for its consent to transfer its home's consumption data
(``POST /prod/dataspace/consents``: every home access relies on a consent granted to that installation), then each
item transfers one month of it to the bureau measuring the renovation's effect (one event of kind
``consumption_transfer`` each).
"""

from __future__ import annotations

import datetime as dt
import random

import httpx
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


def home_of(site: Site) -> str:
    """The fiscal housing number of the home an adviser's firm follows (one per site, for the example)."""
    return f"59{int(site.site_id) % 10**10:010d}"


def household_consent(client: httpx.Client, auth: dict[str, str], site: Site) -> dict[str, str]:
    """The household's consent to read its home's consumption and have it transferred: the Consent-Id header."""
    r = client.post("/prod/dataspace/consents", headers=auth, json={
        "household": home_of(site), "scope": ["consumption"], "transfer_consumption": True,
        "purpose": "mesurer l'effet de la rénovation", "expires": "2028-12-31"})
    r.raise_for_status()
    return {"Consent-Id": r.json()["consent_id"]}


def past_month(back: int) -> str:
    """The month ``back`` months before the current one (``YYYY-MM``): consumption data exists for past months only."""
    today = dt.datetime.now(dt.UTC).date()
    months = today.year * 12 + today.month - 1 - back
    return f"{months // 12:04d}-{months % 12 + 1:02d}"


def transfers(rng: random.Random, software: dict[str, str], site: Site, index: int, count: int) -> Send:
    """One month of the home's consumption (one of the last 12) transferred to the bureau measuring the renovation's
    effect."""
    return Send(f"/prod/dataspace/homes/{home_of(site)}/transfers",
                json={"recipient": "Bureau d'études thermiques", "period": past_month(index % 12 + 1)})
