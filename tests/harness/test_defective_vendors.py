"""Every shipped defective vendor, run for real on its whole wave: the failed automated MUST and SHOULD requirements
are exactly those its ``expected.toml`` lists, no more, no less, explained by findings that quote the trace; none is
in error, and those not exercised are exactly those it lists as such. Each runs on 2027-W2 HOSPITAL, and on 2026-W1
HOSPITAL unless its defect breaks nothing that wave asks: 2027-W2 made HOSPITAL's SHOULDs MUSTs, so a SHOULD check
firing wrongly on real software shows on 2026-W1 only.

The real harness, the real HTTPS sandbox (one listener per bad TLS server), real driver processes. A defect
whose list would grow (a requirement blamed that the software meets) or shrink (a defect no check sees) fails
here; ``usine coverage --strict`` counts these lists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformity.catalog import load_catalog
from conformity.defects import VendorExpectation, vendor_expectations
from conformity.defects.coverage import by_level, should_automated, unsettled, vendor_case_id
from conformity.harness.report import rows_of

VENDORS = Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health" / "defective"
RUNS = vendor_expectations(VENDORS)
RUN_IDS = [vendor_case_id(e.vendor, e.wave, e.failed) for e in RUNS]

pytestmark = pytest.mark.slow


def test_every_defective_vendor_declares_what_it_fails() -> None:
    declared = {e.vendor for e in RUNS}
    shipped = {p.parent.name for p in VENDORS.glob("*/vendor.toml")}
    assert declared == shipped and len(shipped) >= 20
    assert all(e.failed for e in RUNS)
    catalog = load_catalog()
    neither = {(e.vendor, e.wave): by_level(catalog, e.wave, e.category, (*e.failed, *e.not_exercised))[2]
               for e in RUNS}
    assert not {k: v for k, v in neither.items() if v}, "declared, but no automated MUST or SHOULD of the run's wave"
    # some runs are where an automated SHOULD can fail, so a SHOULD failed and not declared shows
    assert len([e for e in RUNS if should_automated(catalog, e.wave, e.category)]) >= 15


@pytest.mark.parametrize("expected", RUNS, ids=RUN_IDS)
def test_defective_vendor_fails_exactly_its_requirements(run_harness: Callable[..., tuple[dict[str, Any], Any]],
                                                        expected: VendorExpectation, cda_schema: Path) -> None:
    catalog = load_catalog()
    must, should, neither = by_level(catalog, expected.wave, expected.category, expected.failed)
    unexercised_must, unexercised_should, unexercised_neither = \
        by_level(catalog, expected.wave, expected.category, expected.not_exercised)
    assert not neither and not unexercised_neither, \
        f"{expected.vendor} declares what {expected.wave} {expected.category} holds as no automated MUST or SHOULD"
    report, _ = run_harness(expected.vendor, wave=expected.wave, category=expected.category)
    summary = report["summary"]
    failing = {r["id"]: r["findings"][:2] for r in report["requirements"]
               if r["verdict"] in ("fail", "error", "not-exercised")}
    assert (sorted(summary["failed_must"]), summary["errored_must"], sorted(summary["not_exercised_must"])) == \
        (must, [], unexercised_must), failing
    assert unsettled(rows_of(report), "SHOULD") == (should, [], unexercised_should), failing
    rows = [r for r in report["requirements"] if r["id"] in expected.failed]
    assert all(f["message"] for r in rows for f in r["findings"])
    assert all(r["findings"] for r in report["requirements"] if r["id"] in expected.not_exercised)
    assert any("exchange" in f for r in rows for f in r["findings"]), "a finding must quote the trace"
