"""The session's patients and practitioners, as scenarios' input factories pick them."""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import ScenarioContext


def patient(ctx: ScenarioContext, scenario: str = "match", index: int = 0) -> dict[str, Any]:
    """A patient of the fixtures serving ``scenario`` (match, multiple, absent), the ``index``-th (cycling)."""
    found: list[dict[str, Any]] = [p for p in ctx.fixtures.get("patients", ()) if p["scenario"] == scenario]
    return found[index % len(found)]


def practitioner(ctx: ScenarioContext, index: int = 0) -> dict[str, Any]:
    """The ``index``-th practitioner of the fixtures (cycling)."""
    pracs: list[dict[str, Any]] = ctx.fixtures["practitioners"]
    return pracs[index % len(pracs)]
