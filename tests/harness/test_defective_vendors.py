"""Every shipped defective vendor, run for real on its whole wave: the failed MUST requirements are exactly those
its ``expected.toml`` lists, no more, no less, explained by findings that quote the trace.

The real harness, the real HTTPS sandbox (one listener per bad TLS server), real driver processes. A defect
whose list would grow (a requirement blamed that the software meets) or shrink (a defect no check sees) fails
here; ``usine coverage --strict`` counts these lists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformity.defects import VendorExpectation, vendor_expectations
from conformity.defects.coverage import vendor_case_id

VENDORS = Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health" / "defective"
RUNS = vendor_expectations(VENDORS)
RUN_IDS = [vendor_case_id(e.vendor, e.wave, e.failed) for e in RUNS]

pytestmark = pytest.mark.slow


def test_every_defective_vendor_declares_what_it_fails() -> None:
    declared = {e.vendor for e in RUNS}
    shipped = {p.parent.name for p in VENDORS.glob("*/vendor.toml")}
    assert declared == shipped and len(shipped) >= 20
    assert all(e.failed for e in RUNS)


@pytest.mark.parametrize("expected", RUNS, ids=RUN_IDS)
def test_defective_vendor_fails_exactly_its_requirements(run_harness: Callable[..., tuple[dict[str, Any], Any]],
                                                        expected: VendorExpectation, cda_schema: Path) -> None:
    report, _ = run_harness(expected.vendor, wave=expected.wave, category=expected.category)
    summary = report["summary"]
    assert (sorted(summary["failed_must"]), summary["errored_must"], sorted(summary["not_exercised_must"])) == \
        (sorted(expected.failed), [], sorted(expected.not_exercised)), \
        {r["id"]: r["findings"][:2] for r in report["requirements"] if r["verdict"] in ("fail", "error", "not-exercised")}
    rows = [r for r in report["requirements"] if r["id"] in expected.failed]
    assert all(f["message"] for r in rows for f in r["findings"])
    assert all(r["findings"] for r in report["requirements"] if r["id"] in expected.not_exercised)
    assert any("exchange" in f for r in rows for f in r["findings"]), "a finding must quote the trace"
