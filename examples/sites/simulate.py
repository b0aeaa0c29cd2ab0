"""Simulated sites: installations of labelled software sending real data to the sandbox's production role.

Pack-generic: each installation is registered through the sandbox's admin API (it gets an installation token), then
sends what a pack's :class:`Producer` makes (``examples/sites/<pack>.py``: care sites send documents, firms file
diagnostics…) to that pack's production service, which emits one CloudEvents data-received event per accepted
item. Any refusal stops the simulation with the sandbox's answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Site:
    """Where software is installed: the pack's site id (a FINESS, a SIRET…), its size class and its name."""

    site_id: str
    size: str
    name: str


@dataclass(frozen=True)
class Send:
    """One production request: a path under the sandbox, and a JSON body or raw content with its media type."""

    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


#: what one site sends: (random generator, software, site, index of the item, items the site sends) → the request
Producer = Callable[[random.Random, dict[str, str], Site, int, int], Send]
#: what an installation asks once before it sends (e.g. the consent its requests rely on): (client with the
#: installation's token, site) → headers every request of that installation carries
Setup = Callable[[httpx.Client, dict[str, str], Site], dict[str, str]]


def simulate_sites(base_url: str, admin_token: str, *, verify: Any, vendor_id: str, software: dict[str, str],
                   wave: str, category: str, sites: list[Site], count: int, produce: Producer,
                   seed: int = 7, setup: Setup | None = None) -> list[dict[str, Any]]:
    """Register one installation per site and send ``count`` items ``produce`` makes from each (after ``setup``, if
    any: what the installation asks first, e.g. a household's consent); the installations."""
    rng = random.Random(seed)
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
            auth = {"Authorization": f"Bearer {inst['token']}"}
            auth |= setup(client, auth, site) if setup is not None else {}
            for i in range(count):
                send = produce(rng, software, site, i, count)
                r = client.post(send.path, json=send.json, content=send.content, headers={**auth, **send.headers})
                r.raise_for_status()
    return installations
