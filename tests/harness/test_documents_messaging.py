"""Documents, messaging, directory: every category plans only the actions its wave pins.

The reference vendor's full runs are in ``test_reference_golden.py``; each defective vendor's exact list of
failed requirements in ``test_defective_vendors.py``; one-defect trace mutations in ``test_discrimination.py``.
"""

from __future__ import annotations

import pytest

from conformity.catalog import load_catalog
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.vendor import load_vendor
from tests.harness.helpers import vendor_manifest

#: check ids of this area (documents, messaging, directory, INS carried, software identified)
AREA = ("cda.", "docshare.", "service.", "messaging.", "directory.", "ins.only_qualified_carried",
        "client.software_identified")

def area_requirements(wave: str, category: str) -> tuple[str, ...]:
    """The automated requirements of the wave × category whose checks belong to this area."""
    spec = load_catalog().specification(wave, category)
    return tuple(a.id for a in spec.requirements
                 if any(c.startswith(AREA) for c in a.requirement.proof.checks))


@pytest.mark.parametrize("wave", ["2026-W1", "2027-W2"])
def test_every_category_plans_only_pinned_actions(wave: str) -> None:
    """A scenario of this area never uses an action its wave × category does not pin (PHARMACY 2026-W1 has no
    DOCSHARE, so the requirements it shares with DOCSHARE are checked on scenarios without document actions)."""
    catalog, vendor = load_catalog(), load_vendor(vendor_manifest("reference"))
    for category in catalog.waves[wave].categories:
        plan = make_plan(catalog, wave, category, area_requirements(wave, category))
        Runner(plan, vendor, 0, None)  # type: ignore[arg-type]  # raises when a scenario uses an unpinned action
        assert ("docshare.v2_content" in plan.scenarios) == (wave == "2027-W2")
