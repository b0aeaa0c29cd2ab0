"""Test-session fixtures generated from a seed: patients, practitioners, organisations, sites.

The same seed always gives the same fixtures. The last practitioner is inactive (retired), with
the family name of another one, and so is its messaging address. Patients come with the scenario they
serve for the patient identity service: ``match`` (registered once), ``multiple`` (two registry entries
share the same strict traits), ``absent`` (known locally, not in the registry).
"""

from __future__ import annotations

import random
from typing import Any

from conformity.packs.health.ins import OID_DEMO_NIR, OID_TEST_NIR, ins_reference, nir_key, normalise_traits

_FAMILY = ["MARTIN", "Bernard", "Dubois", "Lefèvre", "Moreau-Giraud", "D'Almeida", "Nguyễn", "Da Silva Pereira",
           "Éloi", "Le Guénnec", "Fournier", "O'Connor", "Bénard-Lefébure-Montmorency"]
_GIVEN_F = ["Hélène", "Marie-Thérèse", "Zoé", "Anaïs", "Chloé Agnès", "Maëlle"]
_GIVEN_M = ["Jean-Pierre", "François", "Noël", "Loïc", "Jérôme Paul", "Anatole"]
_PLACES = ["75056", "69123", "13055", "2A004", "31555", "33063", "99134"]  # INSEE codes; 99xxx = born abroad
_PROFESSIONS = [("10", "Médecin", "SM54", "Médecine générale"), ("10", "Médecin", "SM26", "Biologie médicale"),
                ("21", "Pharmacien", "", ""), ("60", "Infirmier", "", ""), ("10", "Médecin", "SM44", "Radiologie")]
_ORG_TYPES = [("355", "Centre hospitalier"), ("611", "Laboratoire de biologie médicale"), ("620", "Pharmacie d'officine"),
              ("124", "Centre de santé"), ("603", "Cabinet de radiologie")]


def _ins(rng: random.Random, sex: str, birth_date: str, place: str) -> str:
    yy, mm = birth_date[2:4], birth_date[5:7]
    dept, commune = place[:2], place[2:]
    body = f"{'1' if sex == 'M' else '2'}{yy}{mm}{dept}{commune}{rng.randint(1, 999):03d}"
    return body + nir_key(body)


def _patient(rng: random.Random, ref: str, scenario: str) -> dict[str, Any]:
    sex = rng.choice("MF")
    year = rng.choice([1931, 1948, 1967, 1984, 1999, 2012, 2024])
    birth_date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    place = rng.choice(_PLACES)
    traits = {"birth_name": rng.choice(_FAMILY), "first_names": rng.choice(_GIVEN_M if sex == "M" else _GIVEN_F),
              "birth_date": birth_date, "sex": sex, "birth_place_code": place}
    ins = _ins(rng, sex, birth_date, place)
    oid = OID_TEST_NIR if rng.random() < 0.8 else OID_DEMO_NIR
    return {"ref": ref, "scenario": scenario, "traits": traits, "ins": ins, "oid": oid,
            "registered_traits": normalise_traits(traits)}


def generate(seed: int, *, patients: int = 6) -> dict[str, Any]:
    """Fixtures for one test session, a pure function of ``seed``."""
    rng = random.Random(seed)
    pts = [_patient(rng, f"P{i + 1}", "match") for i in range(max(patients, 1))]
    twin = _patient(rng, f"P{len(pts) + 1}", "multiple")
    absent = _patient(rng, f"P{len(pts) + 2}", "absent")
    orgs: list[dict[str, Any]] = []
    for i, (code, label) in enumerate(_ORG_TYPES):
        finess = f"{rng.randint(1, 95):02d}{rng.randint(0, 9999999):07d}"
        orgs.append({"finess": finess, "name": f"{label} {_FAMILY[(seed + i) % len(_FAMILY)].upper()}",
                     "type_code": code, "type": label,
                     "mss_address": f"secretariat.{finess}@{code}.mssante.test"})
    pracs = []
    for i, (prof_code, prof, spec_code, spec) in enumerate(_PROFESSIONS):
        rpps = f"10{rng.randint(0, 999999999):09d}"
        sex = rng.choice("MF")
        given = rng.choice(_GIVEN_M if sex == "M" else _GIVEN_F).split()[0]
        family = rng.choice(_FAMILY)
        pracs.append({"national_id": "8" + rpps, "rpps": rpps, "family_name": family, "given_name": given,
                      "profession_code": prof_code, "profession": prof, "specialty_code": spec_code, "specialty": spec,
                      "organisation": orgs[i % len(orgs)]["finess"],
                      "mss_address": f"{given.lower()}.{rpps[-4:]}@{orgs[i % len(orgs)]['type_code']}.mssante.test"})
    for p in pracs:
        p["active"] = True
    for o in orgs:
        o["active"] = True
    pracs.append(_retired_homonym(rng, pracs[1], orgs[1]))
    sites = [{"site_id": orgs[0]["finess"], "size": "M", "name": orgs[0]["name"]}]
    return {"seed": seed, "patients": pts + [twin, absent], "practitioners": pracs, "organisations": orgs,
            "sites": sites}


def _retired_homonym(rng: random.Random, twin: dict[str, Any], org: dict[str, Any]) -> dict[str, Any]:
    """An inactive practitioner (retired) with the family name of an active one, and an inactive address.

    Drawn last so that adding it changed no other fixture of a seed (DIRECTORY-005 needs inactive entries).
    """
    rpps = f"10{rng.randint(0, 999999999):09d}"
    given = rng.choice([g for g in _GIVEN_M + _GIVEN_F if g.split()[0] != twin["given_name"]]).split()[0]
    return {"national_id": "8" + rpps, "rpps": rpps, "family_name": twin["family_name"], "given_name": given,
            "profession_code": twin["profession_code"], "profession": twin["profession"],
            "specialty_code": twin["specialty_code"], "specialty": twin["specialty"], "organisation": org["finess"],
            "mss_address": f"{given.lower()}.{rpps[-4:]}@{org['type_code']}.mssante.test", "active": False}


def registry_entries(fixtures: dict[str, Any]) -> list[dict[str, Any]]:
    """The patient identity registry of a session: every patient but the absent, the twin twice."""
    out = []
    for p in fixtures["patients"]:
        if p["scenario"] == "absent":
            continue
        out.append(p)
        if p["scenario"] == "multiple":
            other = dict(p)
            body = ("2" if p["ins"][0] == "1" else "1") + p["ins"][1:13]
            other["ins"] = body + nir_key(body)
            out.append(other)
    return out


def registry_references(fixtures: dict[str, Any]) -> frozenset[str]:
    """The registry's patients as submission metadata name them (:func:`ins_reference`)."""
    return frozenset(ins_reference(e["ins"], e["oid"]) for e in registry_entries(fixtures))
