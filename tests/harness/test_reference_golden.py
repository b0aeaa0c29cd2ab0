"""Golden runs: the reference vendor passes every automated MUST of both waves, every category, deterministically.

One full run per wave (HOSPITAL, whose scenarios include every category's); the other categories are those
traces judged with their own plan (the software is never told its category). Determinism: ``test_determinism``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.runs import VendorRun

#: with the discrimination tests, on one worker: the reference runs are made once (``./test`` uses --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reference")]


WAVE_CATEGORIES = [(w, c) for w, cs in (("2026-W1", ("HOSPITAL", "GP", "LAB", "PHARMACY")),
                                         ("2027-W2", ("HOSPITAL", "GP", "LAB", "PHARMACY", "RADIOLOGY"))) for c in cs]


@pytest.mark.parametrize(("wave", "category"), WAVE_CATEGORIES, ids=[f"{w}-{c}" for w, c in WAVE_CATEGORIES])
def test_reference_passes_every_automated_must(reference_run: Callable[[str, str], VendorRun], wave: str,
                                               category: str) -> None:
    ref = reference_run(wave, category)
    report, traces = ref.report, ref.traces
    failed = {r["id"]: r["findings"][:1] for r in report["requirements"]
              if r["level"] == "MUST" and r["method"] == "automated" and r["verdict"] != "pass"}
    assert not failed, failed
    assert report["summary"]["passed"]
    assert set(traces) == {s["id"] for s in report["scenarios"]}
    assert all(not s["driver_failures"] and s["error"] is None for s in report["scenarios"])
