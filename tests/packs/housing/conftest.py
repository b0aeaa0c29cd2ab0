"""The housing pack's runs: one in-process HTTPS sandbox, the reference HomeApp run once per wave and category."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from conformity.harness.sandbox_access import SandboxAccess, start_local
from tests.packs.housing.runs import run_housing_vendor
from tests.runs import VendorRun


@pytest.fixture(scope="session")
def housing_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxAccess]:
    with start_local(tmp_path_factory.mktemp("housing-sandbox")) as access:
        yield access


@pytest.fixture(scope="session")
def housing_run(housing_sandbox: SandboxAccess) -> Callable[[str, str, str], VendorRun]:
    """``housing_run(vendor, wave, category)``: a real run; the reference's is made once per test process."""
    cache: dict[tuple[str, str, str], VendorRun] = {}

    def run(vendor: str, wave: str, category: str) -> VendorRun:
        if vendor != "reference":
            return run_housing_vendor(housing_sandbox, vendor, wave, category)
        if (vendor, wave, category) not in cache:
            cache[(vendor, wave, category)] = run_housing_vendor(housing_sandbox, vendor, wave, category)
        return cache[(vendor, wave, category)]

    return run
