"""Every shipped defective HomeApp, run for real: the failed automated MUST and SHOULD requirements are exactly those
its ``expected.toml`` lists for the wave, no more, no less, explained by findings; none is in error, and those not
exercised are exactly those it lists as such.

Each vendor runs on the newest housing wave here, and on every other wave whose category holds an automated SHOULD
(2026-W3's DIAGNOSTICIAN and ADVISER: the newest wave made its SHOULDs MUSTs, so a SHOULD check firing wrongly on
real software shows there only); ``expected.toml`` also declares the other 2026-W3 runs, which ``usine coverage``
counts and which the slow-only ``USINE_ALL_WAVES=1`` run checks too.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from conformity.catalog import load_catalog
from conformity.defects import VendorExpectation, vendor_expectations
from conformity.defects.coverage import by_level, should_automated, unsettled, vendor_case_id
from conformity.harness.report import rows_of
from tests.packs.housing.runs import VENDORS
from tests.runs import VendorRun

pytestmark = pytest.mark.slow
ALL = vendor_expectations(VENDORS / "defective")
NEWEST = "2027-W4"
CATALOG = load_catalog()
RUNS = [e for e in ALL if os.environ.get("USINE_ALL_WAVES") or e.wave == NEWEST
        or should_automated(CATALOG, e.wave, e.category)]
RUN_IDS = [vendor_case_id(e.vendor, e.wave, e.failed) for e in RUNS]


def test_every_defective_vendor_declares_what_it_fails() -> None:
    declared = {e.vendor for e in ALL}
    shipped = {p.parent.name for p in (VENDORS / "defective").glob("*/vendor.toml")}
    assert declared == shipped and len(shipped) >= 10
    assert all(e.failed for e in ALL) and {e.wave for e in ALL} == {"2026-W3", "2027-W4"}
    catalog = load_catalog()
    neither = {(e.vendor, e.wave): by_level(catalog, e.wave, e.category, (*e.failed, *e.not_exercised))[2]
               for e in ALL}
    assert not {k: v for k, v in neither.items() if v}, "declared, but no automated MUST or SHOULD of the run's wave"
    # every run where an automated SHOULD could fail is run, so a SHOULD failed and not declared shows
    assert [(e.vendor, e.wave) for e in ALL if should_automated(catalog, e.wave, e.category) and e not in RUNS] == []
    assert any(should_automated(catalog, e.wave, e.category) for e in RUNS)


@pytest.mark.parametrize("expected", RUNS, ids=RUN_IDS)
def test_defective_vendor_fails_exactly_its_requirements(
    housing_run: Callable[..., VendorRun], expected: VendorExpectation
) -> None:
    catalog = load_catalog()
    must, should, neither = by_level(catalog, expected.wave, expected.category, expected.failed)
    unexercised_must, unexercised_should, unexercised_neither = by_level(
        catalog, expected.wave, expected.category, expected.not_exercised)
    assert not neither and not unexercised_neither, \
        f"{expected.vendor} declares what {expected.wave} {expected.category} holds as no automated MUST or SHOULD"
    report = housing_run(expected.vendor, expected.wave, expected.category).report
    summary = report["summary"]
    failing = {r["id"]: r["findings"][:2] for r in report["requirements"]
               if r["verdict"] in ("fail", "error", "not-exercised")}
    got = (sorted(summary["failed_must"]), summary["errored_must"], sorted(summary.get("not_exercised_must", [])))
    assert got == (must, [], unexercised_must), failing
    assert unsettled(rows_of(report), "SHOULD") == (should, [], unexercised_should), failing
    rows = [r for r in report["requirements"] if r["id"] in expected.failed]
    assert all(f["message"] for r in rows for f in r["findings"])
