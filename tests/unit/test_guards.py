"""conformity.checks.guards: guard decorators and the findings accumulator every check shares."""

from __future__ import annotations

from typing import Any

from conformity.checks.guards import Findings, guarded, missing_fails
from conformity.checks.model import Finding, Missing, MissingEvidence, Verdict, passed

CTX: Any = None


def test_a_guard_naming_what_is_missing_decides_and_the_rule_does_not_run() -> None:
    ran = []

    def needs_login(subject: Any, ctx: Any) -> Finding | None:
        return None if subject.get("login") else Finding("no login", got=subject)

    @guarded(needs_login)
    def rule(subject: Any, ctx: Any) -> Verdict:
        """The rule."""
        ran.append(subject)
        return passed("ok")

    assert rule({"login": True}, CTX).status == "pass" and ran == [{"login": True}]
    v = rule({}, CTX)
    assert v.status == "not-exercised" and v.findings == (Finding("no login", got={}),) and len(ran) == 1
    assert rule.__doc__ == "The rule." and rule.__name__ == "rule"
    assert guarded(needs_login, status="fail")(rule)({}, CTX).status == "fail"


def test_missing_fails_turns_missing_evidence_into_a_failure_with_its_finding() -> None:
    @missing_fails
    def rule(subject: Any, ctx: Any) -> Verdict:
        raise MissingEvidence(Finding("the step never ran"))

    v = rule(None, CTX)
    assert v.status == "fail" and v.findings[0].message == "the step never ran"


def test_findings_accumulate_and_make_a_judged_or_strict_verdict() -> None:
    f = Findings()
    assert f.judged("all good").status == "pass" and f.verdict("all good").status == "pass"
    f.missing("the faulty login was not performed", scenario="s")
    assert f == [Missing("the faulty login was not performed", scenario="s")]
    assert f.judged("x").status == "not-exercised" and f.verdict("x").status == "fail"
    f.append(Finding("a breach"))
    v = f.judged("x")
    assert v.status == "fail" and [x.message for x in v.findings] == ["a breach"]  # on the breaches alone
