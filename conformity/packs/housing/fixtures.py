"""Housing test-session fixtures from a seed: addresses (geocoder), buildings (registry), homes, professionals.

The same seed always gives the same fixtures (a generator of its own, so other packs' fixtures of the
seed do not change). Addresses come with the situation they serve for the geocoder and registry:
``complete`` (a house number, high score, one building), ``low_score`` (a house number with a score
under 0.7: filed with a warning), ``incomplete`` (only the street is found: blocks a DPE upload),
``no_building`` (geocoded, but the registry knows no building there), ``poor`` (a house number with a score
so low, under 0.4, that the registry answers ``score_too_low`` to a look-up asking for more). Each home has a
fiscal housing number and the DPE inputs of a diagnostician's visit.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from conformity.packs.housing.rules import RNB_ALPHABET, dpe_class, single_class

_STREETS = [
    ("75105", "8884", "Boulevard Saint-Michel", "Paris"),
    ("69383", "0412", "Rue de la République", "Lyon"),
    ("13201", "1730", "Rue de la Canebière", "Marseille"),
    ("33063", "2204", "Cours de l'Intendance", "Bordeaux"),
    ("59350", "0991", "Rue Nationale", "Lille"),
    ("2A004", "0150", "Cours Napoléon", "Ajaccio"),
]
_GIVEN = ["Camille", "Dominique", "Claude", "Sacha", "Yannick", "Maëlle"]
_FAMILY = ["Lemaire", "Rousseau", "Nguyen", "Da Costa", "Le Goff", "Benali"]
ROLES = ("diagnostician", "adviser", "contractor")
SITUATIONS = ("complete", "complete", "low_score", "incomplete", "no_building", "poor")


def _rnb(rng: random.Random) -> str:
    return "".join(rng.choice(RNB_ALPHABET) for _ in range(12))


def _siret(rng: random.Random) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(14))


def _address(rng: random.Random, index: int, situation: str) -> dict[str, Any]:
    insee, street, name, city = _STREETS[index % len(_STREETS)]
    number = rng.randint(1, 180)
    score = {
        "complete": round(rng.uniform(0.86, 0.98), 2),
        "low_score": round(rng.uniform(0.5, 0.65), 2),
        "poor": round(rng.uniform(0.2, 0.35), 2),
        "incomplete": round(rng.uniform(0.55, 0.75), 2),
        "no_building": round(rng.uniform(0.86, 0.98), 2),
    }[situation]
    kind = "street" if situation == "incomplete" else "housenumber"
    key = f"{insee}_{street}_{number:05d}" if kind == "housenumber" else f"{insee}_{street}_00000"
    label = f"{number} {name} {insee[:2]}000 {city}" if kind == "housenumber" else f"{name} {city}"
    query = f"{number} {name.lower()} {city.lower()}"
    return {
        "ref": f"A{index + 1}",
        "situation": situation,
        "query": query,
        "label": label,
        "type": kind,
        "score": score,
        "cle_interop": key,
        "citycode": insee,
        "lon": round(rng.uniform(-1.5, 7.5), 5),
        "lat": round(rng.uniform(43.0, 50.5), 5),
    }


def _visit(rng: random.Random) -> dict[str, Any]:
    """What a diagnostician measured: surface, primary energy and emissions per m², and the classes."""
    ep = round(rng.uniform(60, 460), 1)
    ges = round(rng.uniform(4, 90), 1)
    return {
        "surface": round(rng.uniform(28, 140), 1),
        "year": rng.choice([1930, 1958, 1975, 1989, 2004, 2016]),
        "ep_conso": ep,
        "emissions": ges,
        "cost": round(ep * 0.11 * rng.uniform(40, 120)),
        "energy_class": dpe_class(ep, ges),
        "emissions_class": single_class(ges, [6, 11, 30, 50, 70, 100]),
    }


def generate(seed: int) -> dict[str, Any]:
    """Fixtures of the housing services for one test session, a pure function of ``seed``."""
    rng = random.Random(f"housing:{seed}")
    addresses = [_address(rng, i, s) for i, s in enumerate(SITUATIONS)]
    buildings: list[dict[str, Any]] = []
    homes: list[dict[str, Any]] = []
    for a in addresses:
        if a["situation"] in ("incomplete", "no_building"):
            continue
        rnb = _rnb(rng)
        parcel = f"{a['citycode']}000{rng.choice('ABCDEFGH')}{rng.choice('ABCDEFGH')}{rng.randint(1, 9999):04d}"
        buildings.append(
            {
                "rnb_id": rnb,
                "cle_interop": a["cle_interop"],
                "parcel": parcel,
                "status": "constructed",
                "address": a["label"],
            }
        )
        fiscal = (
            f"{a['citycode'][:2].replace('A', '0').replace('B', '0')}{rng.randint(0, 9)}{rng.randint(0, 10**9 - 1):09d}"
        )
        homes.append(
            {
                "ref": f"H{len(homes) + 1}",
                "address_ref": a["ref"],
                "address": a["query"],
                "rnb_id": rnb,
                "fiscal_number": fiscal[:12],
                "visit": _visit(rng),
            }
        )
    pros = []
    for i, role in enumerate(ROLES):
        given, family = _GIVEN[(seed + i) % len(_GIVEN)], _FAMILY[(seed + 2 * i) % len(_FAMILY)]
        pros.append(
            {
                "uid": f"pc-{rng.randint(10**7, 10**8 - 1)}",
                "email": f"{given.lower()}.{family.lower().replace(' ', '')}@{role}.pro.test",
                "given_name": given,
                "usual_name": family,
                "siret": _siret(rng),
                "role": role,
                "certification": f"CERT-{rng.randint(10000, 99999)}" if role == "diagnostician" else "",
                "rge": f"RGE-{rng.randint(100000, 999999)}" if role == "contractor" else "",
            }
        )
    return {
        "seed": seed,
        "addresses": addresses,
        "buildings": buildings,
        "homes": homes,
        "professionals": pros,
        "sites": [{"site_id": pros[0]["siret"], "size": "S", "name": f"Cabinet {pros[0]['usual_name']}"}],
    }


def driver_fixtures(fixtures: Mapping[str, Any]) -> dict[str, Any]:
    """What the software under test knows locally: the homes by address and fiscal number, the professionals.

    Never the building ids nor the geocoder's keys: the software finds them through the services.
    """
    return {
        "homes": [
            {"ref": h["ref"], "address": h["address"], "fiscal_number": h["fiscal_number"], "visit": h["visit"]}
            for h in fixtures.get("homes", ())
        ],
        "addresses": [{"ref": a["ref"], "query": a["query"]} for a in fixtures.get("addresses", ())],
        "professionals": fixtures.get("professionals", []),
        "site": (fixtures.get("sites") or [{}])[0],
    }
