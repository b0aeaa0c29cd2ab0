"""Identity, authentication and transport security: version-dependent rules, re-derivation, generated inputs.

Real harness, real HTTPS sandbox (a listener per bad TLS server), real driver processes; no mocks. Each
defective vendor's exact list of failed requirements is in ``test_defective_vendors.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from conformity.catalog import load_catalog
from conformity.checks.evaluate import evaluate_check
from conformity.harness.plan import make_plan
from conformity.harness.runner import eval_context
from conformity.harness.vendor import load_vendor
from conformity.packs.health.scenarios.identity import GENERATED, generated_traits
from tests.harness.helpers import vendor_manifest, verdicts

Run = Callable[..., tuple[dict[str, Any], dict[str, dict[str, Any]]]]

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
    assert next(r for r in report["requirements"] if r["id"] == "SECURITY-001")["findings"]


def test_generated_traits_are_recorded_and_deterministic(run_harness: Run) -> None:
    """The hypothesis examples depend only on the seed (not on the process) and land in the trace."""
    _, traces = run_harness("reference", wave="2026-W1", only=("PATIENTID-002",), seed=7)
    steps = [e["data"] for e in traces["patientid.lookups"]["exchanges"]
             if e.get("note") == "driver.perform" and str(e["data"].get("name", "")).startswith("generated_")]
    assert len(steps) == GENERATED and all(s["input"]["birth_name"] for s in steps)
    exchanges = traces["patientid.lookups"]["exchanges"]
    seed = next(e["data"]["seed"] for e in exchanges if e.get("note") == "scenario.start")
    code = ("from conformity.packs.health.scenarios.identity import generated_traits as g; "
            f"import json; print(json.dumps(g({seed % 2**32})))")
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    pool = generated_traits(seed % 2**32)
    assert json.loads(other_process) == pool
    assert all({k: v for k, v in s["input"].items() if k != "identity_document_checked"} in pool for s in steps)
