"""No vacuous pass: with the situations a check is about removed from the reference vendor's recorded traces, the
check says not-exercised — never pass (nothing shown), never fail (nothing broken). One test per check family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformity.checks.evaluate import evaluate_checks
from conformity.checks.registry import CHECKS
from conformity.harness.report import requirement_rows, summarise
from tests.runs import VendorRun

pytestmark = pytest.mark.xdist_group("reference")
#: what stays of a trace once its situations are removed: the harness's own bookkeeping
KEPT = ("scenario.start", "scenario.end", "driver.initialize")
FAMILIES = sorted({cid.split(".", 1)[0] for cid in CHECKS})


def emptied(trace: dict[str, Any]) -> dict[str, Any]:
    """The trace without a single exchange nor driver step: the software was asked nothing, did nothing."""
    kept = [e for e in trace["exchanges"] if e.get("kind") == "note" and e.get("note") in KEPT]
    return {**trace, "exchanges": kept}


@pytest.mark.parametrize("wave", ["2026-W1", "2027-W2"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_check_without_its_situation_is_not_exercised(reference_run: Callable[[str, str], VendorRun],
                                                        family: str, wave: str) -> None:
    ref = reference_run(wave, "HOSPITAL")
    checks = [c for c in ref.plan.checks if c.split(".", 1)[0] == family]
    if not checks:
        pytest.skip(f"no {family}.* check in {wave}")
    read = {s for c in checks for s in (CHECKS.get(c).scenarios if not CHECKS.get(c).reads_all else ref.traces)}
    traces = {s: emptied(t) if s in read else t for s, t in ref.traces.items()}
    found = evaluate_checks(checks, traces, ref.ctx)
    assert {c: v.status for c, v in found.items()} == dict.fromkeys(checks, "not-exercised"), \
        {c: v.findings[0].message for c, v in found.items() if v.status != "not-exercised"}
    assert all(v.findings and v.findings[0].message for v in found.values())


def test_an_empty_run_passes_nothing_and_fails_nothing(reference_run: Callable[[str, str], VendorRun]) -> None:
    ref = reference_run("2027-W2", "HOSPITAL")
    traces = {s: emptied(t) for s, t in ref.traces.items()}
    rows = requirement_rows(ref.plan, evaluate_checks(ref.plan.checks, traces, ref.ctx))
    summary = summarise(rows)
    assert summary["must_passed"] == 0 and summary["failed_must"] == [] and summary["errored_must"] == []
    assert len(summary["not_exercised_must"]) == summary["must_automated"]


def test_the_reference_run_has_no_problem_and_nothing_not_exercised(
        reference_run: Callable[[str, str], VendorRun]) -> None:
    for wave in ("2026-W1", "2027-W2"):
        ref = reference_run(wave, "HOSPITAL")
        assert ref.report["problems"] == [] and ref.report["summary"]["not_exercised_must"] == []


@pytest.mark.parametrize("max_age,expected", [("max-age=0", "fail"), ("max-age=300", "not-exercised")])
def test_directory_006_judges_only_a_repeat_after_the_answers_max_age(
        reference_run: Callable[[str, str], VendorRun], max_age: str, expected: str) -> None:
    """DIRECTORY-006 (directory.cache_fresh): software that reuses its cached answer and never asks the directory
    again. Past the answer's max-age that is the failure; within it, nothing the rule forbids happened (it passed:
    a vendor whose software never revalidates got a pass when the announced max-age outlived the scenario)."""
    import copy

    ref = reference_run("2026-W1", "HOSPITAL")
    trace = copy.deepcopy(ref.traces["directory.searches"])
    gets = [e for e in trace["exchanges"] if e.get("kind") == "http" and "/directory/practitioners" in
            e["request"]["path"] and e["request"]["query"].get("national_id")]
    first, revalidation = gets[0], gets[1]
    trace["exchanges"].remove(revalidation)  # the software reused its cached answer instead
    first["response"]["headers"]["cache-control"] = max_age
    found = evaluate_checks(["directory.cache_fresh"], {**ref.traces, "directory.searches": trace}, ref.ctx)
    verdict = found["directory.cache_fresh"]
    assert verdict.status == expected, [f.message for f in verdict.findings]
    assert verdict.findings and ("max-age" in verdict.findings[0].message)


def test_directory_006_judges_a_third_search_against_the_answer_the_software_holds(
        reference_run: Callable[[str, str], VendorRun]) -> None:
    """A search repeated twice: the first repeat within the answer's max-age asks nothing (allowed), the second comes
    past it and asks nothing either — the failure. It was never judged: its 'previous answer' was looked for in the
    repeat just before it, which had none."""
    import copy
    import datetime as dt

    ref = reference_run("2026-W1", "HOSPITAL")
    trace = copy.deepcopy(ref.traces["directory.searches"])
    ex = trace["exchanges"]
    gets = [e for e in ex if e.get("kind") == "http" and "/directory/practitioners" in e["request"]["path"]
            and e["request"]["query"].get("national_id")]
    first, revalidation = gets[0], gets[1]
    ex.remove(revalidation)  # the first repeat reuses the answer (within its max-age: allowed)
    first["response"]["headers"]["cache-control"] = "max-age=300"
    again = next(e for e in ex if e.get("note") == "driver.perform" and e["data"].get("name") == "by_national_id_again")
    third = copy.deepcopy(again)
    third["seq"] = again["seq"] + 0.5
    third["data"]["name"] = "by_national_id_third"
    third["time"] = (dt.datetime.fromisoformat(first["time"]) + dt.timedelta(seconds=400)).isoformat()
    ex.insert(ex.index(again) + 1, third)  # past the max-age, and no request to the directory either
    verdict = evaluate_checks(["directory.cache_fresh"], {**ref.traces, "directory.searches": trace},
                              ref.ctx)["directory.cache_fresh"]
    assert verdict.status == "fail", [f.message for f in verdict.findings]
    assert "by_national_id_third" in verdict.findings[0].message and "past its max-age of 300 s" in \
        verdict.findings[0].message
