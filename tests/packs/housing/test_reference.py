"""HomeApp, the reference housing client, passes every automated MUST of both housing waves, every category."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.packs.housing.runs import CATEGORIES, WAVES
from tests.runs import VendorRun

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("housing")]
CASES = [(w, c) for w in WAVES for c in CATEGORIES]


@pytest.mark.parametrize(("wave", "category"), CASES, ids=[f"{w}-{c}" for w, c in CASES])
def test_reference_passes_every_automated_must(housing_run: Callable[..., VendorRun], wave: str, category: str) -> None:
    run = housing_run("reference", wave, category)
    failed = {
        r["id"]: r["findings"][:1]
        for r in run.report["requirements"]
        if r["level"] == "MUST" and r["method"] == "automated" and r["verdict"] != "pass"
    }
    assert not failed, failed
    assert all(not s["driver_failures"] and s["error"] is None for s in run.report["scenarios"])
    assert set(run.traces) == set(run.plan.scenarios)
