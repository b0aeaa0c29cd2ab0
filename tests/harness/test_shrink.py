"""Shrinking with the software in the loop: a failure shows the smallest input the sandbox still refuses."""

from __future__ import annotations

from conformity.checks.trace import TraceView
from conformity.packs.health.ins import normalise_name


def test_defect_failure_cites_the_shrunk_example(run_harness) -> None:
    report, traces = run_harness("no-trait-normalisation", wave="2026-W1", category="GP", only=("PATIENTID-002",))
    (row,) = report["requirements"]
    assert row["verdict"] == "fail"
    shrunk = [f for f in row["findings"] if f["message"].startswith("smallest failing example")]
    assert len(shrunk) == 1
    smallest = shrunk[0]["got"]
    assert len(smallest["birth_name"]) + len(smallest["first_names"]) <= 4
    assert any(normalise_name(smallest[k]) != smallest[k] for k in ("birth_name", "first_names"))
    trace = TraceView(traces["patientid.lookups"])
    refusal = trace.excerpt(shrunk[0]["exchange"])
    assert refusal["outcome"] == "traits-not-normalised"
    assert refusal["request"]["body"]["json"]["birth_name"] == smallest["birth_name"]
    attempts = trace.notes("shrink.attempt")
    assert 1 <= len(attempts) <= 60 and not trace.performed("patient.lookup")[-1].data.get("name", "").startswith("shrink")


def test_reference_has_nothing_to_shrink(run_harness) -> None:
    report, traces = run_harness("reference", wave="2026-W1", category="GP", only=("PATIENTID-002",))
    assert report["requirements"][0]["verdict"] == "pass"
    (result,) = TraceView(traces["patientid.lookups"]).notes("shrink.result")
    assert result.data["skipped"] and not TraceView(traces["patientid.lookups"]).notes("shrink.attempt")
