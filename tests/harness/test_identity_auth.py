"""Identity, authentication and transport security: the reference passes, each defect fails its requirement.

Real harness, real HTTPS sandbox (three listeners), real driver processes; no mocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from conformity.catalog import load_catalog
from conformity.checks.evaluate import evaluate_check
from conformity.checks.registry import CHECKS
from conformity.harness.plan import make_plan
from conformity.harness.runner import eval_context
from conformity.harness.vendor import load_vendor
from conformity.scenarios.health.identity import GENERATED, generated_traits
from tests.harness.conftest import vendor_manifest, verdicts

Run = Callable[..., tuple[dict[str, Any], dict[str, dict[str, Any]]]]

#: the check ids of this area (ins.only_qualified_carried belongs to the documents area)
OURS = ("ins.", "oidc.", "token.", "tls.", "http.")
NOT_OURS = ("ins.only_qualified_carried",)

#: defective vendor → {requirement it must fail (and no other of this area) → a word its findings must contain}
DEFECTS: dict[str, dict[str, str]] = {
    "skip-nonce-check": {"PRACAUTH-004": "nonce"},
    "accept-alg-none": {"PRACAUTH-007": "alg none"},
    "skip-state-check": {"PRACAUTH-003": "state"},
    "no-jwks-rate-limit": {"PRACAUTH-008": "JWKS"},
    "skip-tls-verify": {"SECURITY-002": "self-signed", "MESSAGING-006": "self-signed"},
    "allow-legacy-tls": {"SECURITY-001": "TLS 1.1", "MESSAGING-006": "TLS 1.1"},
    "no-trait-normalisation": {"PATIENTID-002": "normalised", "PATIENTID-003": "normalised"},
    "several-matches-qualified": {"PATIENTID-007": "several", "PATIENTID-005": "multiple"},
}


def ours(check_ids: tuple[str, ...]) -> bool:
    return any(c.startswith(OURS) and c not in NOT_OURS for c in check_ids)


def area_requirements(wave: str, category: str) -> tuple[str, ...]:
    """The requirements of the wave and category proven by this area's checks."""
    spec = load_catalog().specification(wave, category)
    return tuple(a.id for a in spec.requirements if a.requirement.proof.method == "automated"
                 and ours(a.requirement.proof.checks)
                 and all(c.startswith(OURS) and c not in NOT_OURS for c in a.requirement.proof.checks))


def failing(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in report["requirements"] if r["verdict"] != "pass"}


@pytest.mark.parametrize("wave,category", [("2027-W2", "HOSPITAL"), ("2027-W2", "GP"),
                                           ("2026-W1", "HOSPITAL"), ("2026-W1", "GP")])
def test_reference_passes_every_requirement_of_the_area(run_harness: Run, wave: str, category: str) -> None:
    only = area_requirements(wave, category)
    assert {"PATIENTID-002", "PRACAUTH-004", "SECURITY-001", "SECURITY-002"} <= set(only)
    report, traces = run_harness("reference", wave=wave, category=category, only=only)
    assert set(traces) == {"patientid.lookups", "pracauth.login_nominal", "pracauth.login_faults",
                           "security.tls_endpoints"}
    assert not failing(report), {k: (v["verdict"], v["findings"]) for k, v in failing(report).items()}
    assert set(verdicts(report)) == set(only)
    if wave == "2027-W2":
        assert {"PRACAUTH-017", "ETHICS-003"} <= set(only)


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(DEFECTS), ids=[f"{d}->{'+'.join(sorted(DEFECTS[d]))}" for d in sorted(DEFECTS)])
def test_each_defect_fails_its_requirement_and_no_other(run_harness: Run, defect: str) -> None:
    only = area_requirements("2027-W2", "HOSPITAL")
    report, _ = run_harness(defect, wave="2027-W2", only=only)
    bad = failing(report)
    assert set(bad) == set(DEFECTS[defect]), {k: (v["verdict"], v["findings"][:2]) for k, v in bad.items()}
    for rid, row in bad.items():
        assert row["verdict"] == "fail"
        text = " ".join(f["message"] for f in row["findings"])
        assert DEFECTS[defect][rid] in text, (rid, text)
        assert any("exchange" in f for f in row["findings"]), "a finding must quote the trace"


def test_the_jwks_refetch_limit_is_judged_by_the_pinned_version(run_harness: Run) -> None:
    """PRACAUTH 1.0 asked for one refetch per unknown kid; 1.1 limits refetches to one in 5 minutes."""
    old, _ = run_harness("no-jwks-rate-limit", wave="2026-W1", only=("PRACAUTH-008",))
    new, _ = run_harness("no-jwks-rate-limit", wave="2027-W2", only=("PRACAUTH-008",))
    assert verdicts(old) == {"PRACAUTH-008": "pass"} and verdicts(new) == {"PRACAUTH-008": "fail"}


def test_verdicts_rederive_from_the_traces_alone(run_harness: Run) -> None:
    """What the agency does: the same verdicts from the signed traces, without re-running anything."""
    only = ("PRACAUTH-007", "PATIENTID-007", "SECURITY-001")
    report, traces = run_harness("several-matches-qualified", wave="2027-W2", only=only)
    vendor = load_vendor(vendor_manifest("several-matches-qualified"))
    plan = make_plan(load_catalog(), "2027-W2", "HOSPITAL", only)
    ctx = eval_context(plan, vendor.identity())
    again = {c["id"]: evaluate_check(c["id"], traces, ctx).to_json()
             for c in report["checks"]}
    assert again == {c["id"]: {"status": c["status"], "findings": c["findings"]} for c in report["checks"]}
    assert verdicts(report) == {"PRACAUTH-007": "pass", "PATIENTID-007": "fail", "SECURITY-001": "pass"}


def test_generated_traits_are_recorded_and_deterministic(run_harness: Run) -> None:
    """The hypothesis examples depend only on the seed (not on the process) and land in the trace."""
    _, traces = run_harness("reference", wave="2026-W1", only=("PATIENTID-002",), seed=7)
    steps = [e["data"] for e in traces["patientid.lookups"]["exchanges"]
             if e.get("note") == "driver.perform" and str(e["data"].get("name", "")).startswith("generated_")]
    assert len(steps) == GENERATED and all(s["input"]["birth_name"] for s in steps)
    exchanges = traces["patientid.lookups"]["exchanges"]
    seed = next(e["data"]["seed"] for e in exchanges if e.get("note") == "scenario.start")
    code = ("from conformity.scenarios.health.identity import generated_traits as g; "
            f"import json; print(json.dumps(g({seed % 2**32})))")
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    pool = generated_traits(seed % 2**32)
    assert json.loads(other_process) == pool
    assert all({k: v for k, v in s["input"].items() if k != "identity_document_checked"} in pool for s in steps)
