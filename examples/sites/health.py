"""Simulated care sites (health pack): CDA R2 documents sent to the production document-sharing service.

``simulate.simulate_sites(..., produce=documents())``: each item is one document posted to ``/prod/dmp/documents``
(one data-received event per accepted document).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from simulate import Producer, Send, Site

from conformity.packs.health.ins import OID_TEST_NIR, nir_key
from sandbox.packs.health.samples import build_cda, submission

AUTHOR = {"national_id": "810000000017", "family_name": "MARTIN", "given_name": "Claire"}


def _patient(rng: random.Random) -> dict[str, Any]:
    body = f"{rng.choice('12')}{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}75056{rng.randint(1, 999):03d}"
    return {"ins": body + nir_key(body), "oid": OID_TEST_NIR,
            "traits": {"birth_name": "DUPONT", "first_names": "MARIE", "birth_date": "1970-01-01", "sex": "F",
                       "birth_place_code": "75056"}}


def documents(type_code: str = "34106-7") -> Producer:
    """The documents a site sends (of this LOINC type), the last one a minute ago, each a minute apart."""

    def produce(rng: random.Random, software: dict[str, str], site: Site, index: int, count: int) -> Send:
        when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=count - index)
        doc = build_cda(_patient(rng), AUTHOR, {"finess": site.site_id, "name": site.name}, type_code=type_code,
                        effective_time=when, title=f"Compte rendu {index + 1}")
        body = submission(doc, site_id=site.site_id, software={
            "name": software["name"], "version": software["version"], "registration_id": software["registration_id"]})
        return Send("/prod/dmp/documents", json=body)

    return produce
