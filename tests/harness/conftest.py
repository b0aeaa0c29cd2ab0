"""Run the real harness in-process: one HTTPS sandbox per test session, the reference or a defective vendor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import conformity.checks.health  # noqa: F401  (registers checks and scenarios)
from conformity.catalog import load_catalog
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.sandbox_access import SandboxAccess, start_local
from conformity.harness.vendor import load_vendor

VENDORS = Path(__file__).resolve().parents[2] / "examples" / "vendors"


@pytest.fixture(scope="session")
def harness_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxAccess]:
    with start_local(tmp_path_factory.mktemp("harness-sandbox")) as access:
        yield access


def vendor_manifest(name: str) -> Path:
    """``reference`` or the name of a defective vendor (examples/vendors/defective/<name>)."""
    return VENDORS / "reference" / "vendor.toml" if name == "reference" else VENDORS / "defective" / name / "vendor.toml"


@pytest.fixture
def run_harness(harness_sandbox: SandboxAccess) -> Callable[..., tuple[dict[str, Any], dict[str, dict[str, Any]]]]:
    """``run_harness("reference", wave="2026-W1", category="GP", only=(...), seed=0)`` → (report, traces)."""

    def run(vendor: str, *, wave: str = "2026-W1", category: str | None = None, only: tuple[str, ...] = (),
            seed: int = 0) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        v = load_vendor(vendor_manifest(vendor))
        plan = make_plan(load_catalog(), wave, category or v.category, only)
        result = run_to_end(Runner(plan, v, seed, harness_sandbox))
        return result.report, result.traces

    return run


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Requirement id → verdict."""
    return {r["id"]: r["verdict"] for r in report["requirements"]}
