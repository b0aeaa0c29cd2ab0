"""A refusal blames only the requirements really broken: the three wrong blames the issue named, fixed.

A check that verifies several requirements fails each one only on findings that concern it; the others
keep a pass that says which requirement the check's findings are about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import conformity.packs.health.defects  # noqa: F401  (registers the mutations)
from conformity.defects import MUTATIONS, apply, rejudge
from conformity.harness.report import requirement_rows
from tests.runs import VendorRun

pytestmark = pytest.mark.xdist_group("reference")


def rows_after(reference_run: Callable[[str, str], VendorRun], mutation: str) -> dict[str, dict[str, Any]]:
    m = MUTATIONS.get(mutation)
    ref = reference_run("2027-W2", m.category)
    traces, _ = apply(m, ref.traces)
    return {r.id: r.to_json() for r in requirement_rows(ref.plan, rejudge(ref.plan.checks, traces, ref.ctx, ref.verdicts,
                                                                    m.scenario, ref.views))}


def test_a_creation_time_error_fails_DOCSHARE_007_only(reference_run: Callable[[str, str], VendorRun]) -> None:
    rows = rows_after(reference_run, "creation-time-local")
    assert rows["DOCSHARE-007"]["verdict"] == "fail"
    assert all("creationTime" in f["message"] for f in rows["DOCSHARE-007"]["findings"])
    for rid in ("DOCSHARE-004", "DOCSHARE-006", "DOCSHARE-009"):  # docshare.metadata_consistent verifies them too
        assert rows[rid]["verdict"] == "pass", rows[rid]
        assert any("found nothing against" in f["message"] for f in rows[rid]["findings"])


def test_a_userinfo_of_another_practitioner_fails_PRACAUTH_012_only(
        reference_run: Callable[[str, str], VendorRun]) -> None:
    rows = rows_after(reference_run, "other-sub-accepted")
    assert rows["PRACAUTH-012"]["verdict"] == "fail" and rows["PRACAUTH-013"]["verdict"] == "pass"
    wrong_id = rows_after(reference_run, "rpps-recorded")
    assert wrong_id["PRACAUTH-013"]["verdict"] == "fail" and wrong_id["PRACAUTH-012"]["verdict"] == "pass"


def test_a_token_in_a_url_fails_SECURITY_006_not_PRACAUTH_015(reference_run: Callable[[str, str], VendorRun]) -> None:
    rows = rows_after(reference_run, "access-token-in-query")
    assert rows["SECURITY-006"]["verdict"] == "fail" and rows["PRACAUTH-015"]["verdict"] == "pass"
    secret = rows_after(reference_run, "client-secret-in-query")  # the client secret in a URL: both
    assert secret["SECURITY-006"]["verdict"] == secret["PRACAUTH-015"]["verdict"] == "fail"
    assert all(f["requirements"] == ["SECURITY-006", "PRACAUTH-015"] for f in secret["PRACAUTH-015"]["findings"])
