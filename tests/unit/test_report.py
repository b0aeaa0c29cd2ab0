"""conformity.harness.report: the typed report (RequirementRow, Summary) and its JSON form."""

from __future__ import annotations

import json

from conformity.harness.report import RequirementRow, Summary, rows_of, summarise, summary_of


def row(rid: str, verdict: str, *, level: str = "MUST", method: str = "automated",
        findings: tuple[dict[str, object], ...] = (), evidence: str | None = None) -> RequirementRow:
    return RequirementRow(rid, f"REF@1#{rid}", f"title {rid}", level, "interoperability", method,
                          ("c.one",) if method == "automated" else (), verdict, findings, evidence)


ROWS = [
    row("A-1", "pass", findings=({"message": "ok"},)),
    row("A-2", "fail", findings=({"message": "broke it", "exchange": 3},)),
    row("A-3", "error"), row("A-4", "not-exercised"), row("A-5", "not-applicable"),
    row("A-6", "fail", level="SHOULD"),
    row("D-1", "evidence-required", method="document", evidence="a certificate"),
]


def test_rows_round_trip_through_json_with_the_report_schema_member_order() -> None:
    for r in ROWS:
        again = RequirementRow.from_json(json.loads(json.dumps(r.to_json())))
        assert again == r
    assert list(ROWS[0].to_json()) == ["id", "ref", "title", "level", "kind", "method", "checks", "verdict", "findings"]
    assert list(ROWS[-1].to_json())[-2:] == ["evidence", "findings"] and "evidence" not in ROWS[0].to_json()


def test_the_summary_counts_only_automated_musts_and_blocks_on_any_unsettled_one() -> None:
    s = Summary.of(ROWS)
    assert (s.requirements, s.must_automated, s.must_passed) == (7, 5, 1)
    assert (s.failed_must, s.errored_must, s.not_exercised_must) == (("A-2",), ("A-3",), ("A-4",))
    assert s.evidence_required == ("D-1",) and not s.passed
    assert s.verdicts == {"error": 1, "evidence-required": 1, "fail": 2, "not-applicable": 1, "not-exercised": 1,
                          "pass": 1}
    assert Summary.of([ROWS[0], ROWS[4], ROWS[5]]).passed  # a SHOULD failing never blocks
    assert Summary.from_json(json.loads(json.dumps(s.to_json()))) == s == Summary.from_json(summarise(ROWS))


def test_readers_get_typed_rows_and_summary_from_a_report() -> None:
    report = {"requirements": [r.to_json() for r in ROWS], "summary": summarise(ROWS)}
    assert rows_of(report) == ROWS and summary_of(report) == Summary.of(ROWS)
    assert ROWS[1].first_message == "broke it" and ROWS[2].first_message == ""
    assert [r.id for r in ROWS if r.must_automated and not r.settled] == ["A-2", "A-3", "A-4"]
