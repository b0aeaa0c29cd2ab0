"""The housing pack's data: two waves with different pins and a funding schedule, 50+ requirements, every automated
requirement's checks registered, every other one saying which document or review proves it."""

from __future__ import annotations

from conformity.catalog import load_catalog
from conformity.checks.registry import CHECKS
from tests.packs.housing.runs import CATEGORIES, WAVES


def test_housing_waves_pin_different_versions_and_fund_installations() -> None:
    catalog = load_catalog()
    first, second = (catalog.wave(w) for w in WAVES)
    assert first.pack == second.pack == "housing" and second.previous == first.id
    assert set(first.categories) == set(second.categories) == set(CATEGORIES)
    pins = [{c: dict(w.categories[c].referentials) for c in CATEGORIES} for w in (first, second)]
    assert pins[0] != pins[1]
    for wave in (first, second):
        assert wave.funding.proof_of_use("DIAGNOSTICIAN").kinds == ("dpe",)
        assert all(wave.funding.price(c, s) for c in CATEGORIES for s in ("S", "M", "L"))


def test_housing_referentials_hold_fifty_requirements_with_their_proofs() -> None:
    catalog = load_catalog()
    latest = {r.id: r for r in catalog.referentials.values() if r.pack == "housing"}
    requirements = {q.id: q for r in latest.values() for q in r.requirements}
    assert len(requirements) >= 50
    assert {"PROAUTH", "HOUSINGID", "DPE", "CONSENT", "WORKS", "BASELINE"} <= set(latest)
    for q in requirements.values():
        if q.proof.method == "automated":
            assert q.proof.checks and all(c in CHECKS for c in q.proof.checks), q.id
        else:
            assert len(q.proof.evidence) > 30, q.id
