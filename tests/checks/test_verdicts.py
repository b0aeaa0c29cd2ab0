"""One verdict per requirement: a check's findings fail only the requirements they concern; what a check reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformity.checks.evaluate import EvalContext, evaluate_check, evaluate_checks
from conformity.checks.model import Finding, Verdict, combine, concerning, failed, for_requirement, passed
from conformity.checks.registry import CHECKS, check
from conformity.checks.trace import RunView, TraceView

CTX = EvalContext(wave="W", category="C", software={}, scenarios=("a", "b"))


def trace(scenario: str, *paths: str) -> dict[str, Any]:
    exchanges = [{"kind": "note", "seq": 1, "note": "scenario.start", "data": {"scenario": scenario}}]
    exchanges += [{"kind": "http", "seq": i + 2, "service": "dmp", "request": {"method": "GET", "path": p},
                   "response": {"status": 200}} for i, p in enumerate(paths)]
    return {"exchanges": exchanges}


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Checks registered for one test, removed after it."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        CHECKS._items.pop(cid, None)


def test_a_requirement_fails_only_on_findings_that_concern_it() -> None:
    verdict = failed(Finding("the userinfo sub was not compared").about("PRACAUTH-012"))
    assert for_requirement(verdict, "PRACAUTH-012", "oidc.x").status == "fail"
    other = for_requirement(verdict, "PRACAUTH-013", "oidc.x")
    assert other.status == "pass" and "PRACAUTH-012" in other.findings[0].message
    untagged = failed("the control login failed")
    assert {for_requirement(untagged, r).status for r in ("PRACAUTH-012", "PRACAUTH-013")} == {"fail"}


def test_non_failing_verdicts_concern_every_requirement() -> None:
    for v in (passed("ok"), Verdict("error", (Finding("no trace"),)), Verdict("not-applicable", (Finding("n/a"),))):
        assert for_requirement(v, "R-1") == v


def test_the_requirement_verdict_combines_its_own_findings_only() -> None:
    a = failed(Finding("creationTime wrong").about("DOCSHARE-007"), Finding("typeCode wrong").about("DOCSHARE-009"))
    b = passed("every document valid")
    row = combine([for_requirement(a, "DOCSHARE-009", "a"), for_requirement(b, "DOCSHARE-009", "b")])
    assert row.status == "fail" and [f.message for f in row.findings] == ["typeCode wrong"]
    assert combine([for_requirement(a, "DOCSHARE-004", "a"), b]).status == "pass"


def test_findings_round_trip_with_requirements_and_scenario() -> None:
    f = Finding("leak", exchange=3, where="request.query", requirements=("SECURITY-006",), scenario="s.x")
    assert Finding.from_json(f.to_json()) == f
    assert concerning(f.to_json(), "SECURITY-006") and not concerning(f.to_json(), "PRACAUTH-015")
    assert concerning(Finding("any").to_json(), "PRACAUTH-015")


def test_a_check_blaming_a_requirement_it_does_not_verify_is_an_error(registered: list[str]) -> None:
    registered.append("test.blames_stranger")
    check("test.blames_stranger", verifies=["R-1"], scenario="a")(lambda t, ctx: failed(Finding("x").about("R-2")))
    verdict = evaluate_check("test.blames_stranger", {"a": trace("a")}, CTX)
    assert verdict.status == "error" and "R-2" in verdict.findings[0].message


def test_a_check_reading_every_scenario_sees_each_trace_and_names_it(registered: list[str]) -> None:
    seen: list[tuple[str, int]] = []

    def every(run: RunView, ctx: EvalContext) -> Verdict:
        assert isinstance(run, RunView)
        seen.extend((e.scenario, e.seq) for e in run.exchanges())
        return passed("read")

    registered.append("test.reads_all")
    check("test.reads_all", verifies=["R-1"], scenario="a", reads_all=True)(every)
    assert evaluate_check("test.reads_all", {"a": trace("a", "/x"), "b": trace("b", "/y", "/z")}, CTX).status == "pass"
    assert seen == [("a", 2), ("b", 2), ("b", 3)]
    missing = evaluate_check("test.reads_all", {"a": trace("a")}, CTX)
    assert missing.status == "error" and "scenario(s) b left no trace" in missing.findings[0].message


def test_a_check_reading_named_scenarios_needs_each_of_them(registered: list[str]) -> None:
    registered.append("test.reads_two")
    check("test.reads_two", verifies=["R-1"], scenario="a", reads=("b",))(
        lambda run, ctx: passed(f"{len(list(run))} traces"))
    assert CHECKS.get("test.reads_two").scenarios == ("a", "b")
    assert evaluate_checks(["test.reads_two"], {"a": trace("a"), "b": trace("b")}, CTX)["test.reads_two"].findings[0] \
        .message == "2 traces"
    assert evaluate_check("test.reads_two", {"a": trace("a")}, CTX).status == "error"


def test_a_single_scenario_check_gets_its_own_trace_only(registered: list[str]) -> None:
    registered.append("test.single")
    check("test.single", verifies=["R-1"], scenario="b")(
        lambda t, ctx: passed(str(isinstance(t, TraceView) and len(list(t)))))
    assert evaluate_check("test.single", {"a": trace("a", "/x"), "b": trace("b")}, CTX).findings[0].message == "0"
