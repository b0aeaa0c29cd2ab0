"""The terminal output of a run: progress grouped by referential, and a result table readable in a CI log."""

from __future__ import annotations

import pytest

from conformity import plugins
from conformity.catalog import load_catalog
from conformity.harness.plan import make_plan
from conformity.reporting.terminal import scenario_referential

plugins.register_all()  # every installed pack's checks and scenarios

WAVES = ("2026-W1", "2027-W2")


@pytest.mark.parametrize("wave", WAVES)
@pytest.mark.parametrize("only", [(), ("PRACAUTH",)])
def test_every_scenario_is_shown_under_a_referential_it_serves(wave: str, only: tuple[str, ...]) -> None:
    """A scenario that checks only read (``reads=``, like a key rotation read by a faults check) was labelled
    ``OTHER``: it serves the referential of the requirements those checks verify, among the planned ones."""
    plan = make_plan(load_catalog(), wave, "GP", only)
    planned = {p.id.rsplit("-", 1)[0] for p in plan.requirements}
    labels = {s: scenario_referential(plan, s) for s in plan.scenarios}
    assert set(labels.values()) <= planned, labels
    if only:
        assert set(labels.values()) == {"PRACAUTH"}, labels

