"""Helpers of the housing pack's tests: the vendors, waves and categories, and a run with everything checks need."""

from __future__ import annotations

from pathlib import Path

from conformity import plugins
from conformity.harness.sandbox_access import SandboxAccess
from tests.runs import VendorRun, manifest_of, run_vendor

VENDORS = Path(__file__).resolve().parents[3] / "examples" / "vendors" / "housing"
WAVES = ("2026-W3", "2027-W4")
CATEGORIES = ("DIAGNOSTICIAN", "ADVISER", "CONTRACTOR")

plugins.register_all()


def run_housing_vendor(access: SandboxAccess, vendor: str, wave: str, category: str) -> VendorRun:
    """One real run of a housing vendor (reference or a defective name) on a wave and category."""
    return run_vendor(access, manifest_of(VENDORS, vendor), wave, category)
