"""Re-derive every verdict of a bundle from its traces and compare with what the bundle's report claims.

The agency runs the very functions the harness ran (``evaluate_check``, ``requirement_rows``,
``summarise``) on the signed traces, with the context the harness built (``eval_context``); any
difference in a status, a finding, a requirement row or the summary is a reason to refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from conformity.checks.causes import problems_of_run
from conformity.checks.evaluate import EvalContext, evaluate_checks
from conformity.checks.model import Verdict
from conformity.checks.registry import CHECKS
from conformity.errors import Problem
from conformity.harness.plan import Plan
from conformity.harness.report import RequirementRow, Summary, requirement_rows, summarise

REPORT = "report.json"
ROW_KEYS = ("verdict", "level", "method", "checks", "findings", "title", "ref", "kind", "evidence")


def as_json(value: Any) -> Any:
    """A value as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"


def rederive(plan: Plan, ctx: EvalContext, traces: Mapping[str, dict[str, Any]]) -> dict[str, Verdict]:
    """Every planned check's verdict, evaluated again on the bundle's trusted traces."""
    return evaluate_checks(plan.checks, traces, ctx)


def rows_for(plan: Plan, verdicts: Mapping[str, Verdict]) -> list[RequirementRow]:
    """The requirement rows the harness would have written for these verdicts."""
    return requirement_rows(plan, dict(verdicts))


def compare_checks(claimed: list[dict[str, Any]], verdicts: Mapping[str, Verdict], expected: set[str],
                   skip: set[str]) -> list[Problem]:
    """The report's check entries against the re-derived verdicts (``skip``: checks on rejected traces)."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, entry in enumerate(claimed):
        cid = entry["id"]
        where = f"checks[{i}]"
        if cid in seen:
            problems.append(Problem(REPORT, where, f"check {cid} is listed twice"))
            continue
        seen.add(cid)
        if cid not in verdicts:
            problems.append(Problem(REPORT, where, f"check {cid} is not part of the plan of this wave and category"))
            continue
        if cid in skip:
            continue
        mine = verdicts[cid].to_json()
        scenario = CHECKS.get(cid).scenario
        if entry.get("scenario") != scenario:
            problems.append(Problem(REPORT, f"{where}.scenario", f"check {cid} runs on scenario {scenario!r}, "
                                                                 f"the report says {entry.get('scenario')!r}"))
        if entry["status"] != mine["status"]:
            first = mine["findings"][0]["message"] if mine["findings"] else ""
            problems.append(Problem(REPORT, f"{where}.status",
                                    f"check {cid}: the report says {entry['status']!r}, re-derived from the trace: "
                                    f"{mine['status']!r}" + (f" ({first})" if first else "")))
        elif as_json(entry["findings"]) != as_json(mine["findings"]):
            problems.append(Problem(REPORT, f"{where}.findings",
                                    f"check {cid}: findings differ from those re-derived from the trace"))
    for cid in sorted(expected - seen - skip):
        problems.append(Problem(REPORT, "checks", f"check {cid} is missing from the report"))
    return problems


def compare_rows(claimed: Sequence[RequirementRow], rows: Sequence[RequirementRow], skip: set[str]) -> list[Problem]:
    """The report's requirement rows (as claimed, read from its schema-valid JSON) against the re-derived ones
    (``skip``: rows resting on rejected traces), field by field as JSON (findings as written)."""
    problems: list[Problem] = []
    mine = {r.id: as_json(r.to_json()) for r in rows}
    seen: set[str] = set()
    for i, claim in enumerate(claimed):
        rid, row = claim.id, as_json(claim.to_json())
        if rid in seen:
            problems.append(Problem(REPORT, f"requirements[{i}]", f"requirement {rid} is listed twice"))
            continue
        seen.add(rid)
        if rid not in mine or rid in skip:
            continue  # coverage is judged apart
        for key in ROW_KEYS:
            if row.get(key) == mine[rid].get(key):
                continue
            if key == "findings":
                text = f"requirement {rid}: findings differ from those re-derived from the traces"
            else:
                text = (f"requirement {rid}: the report says {key} = {_short(row.get(key))}, re-derived: "
                        f"{_short(mine[rid].get(key))}")
            problems.append(Problem(REPORT, f"requirements[{i}].{key}", text))
    return problems


def compare_problems(claimed: list[dict[str, Any]], traces: Mapping[str, dict[str, Any]]) -> list[Problem]:
    """The report's list of steps that did not run as planned against the one the traces show."""
    mine = as_json([p.to_json() for p in problems_of_run(traces)])
    theirs = as_json([p for p in claimed if p.get("kind") != "sandbox"])
    if theirs == mine:
        return []
    return [Problem(REPORT, "problems", f"the report lists {len(theirs)} step(s) that did not run as planned, the "
                                        f"traces show {len(mine)}" + (f" (first: {mine[0]['message']})" if mine else ""))]


def compare_summary(claimed: Summary, rows: Sequence[RequirementRow]) -> list[Problem]:
    """The report's summary (as claimed) against the summary of the re-derived rows."""
    mine, theirs = as_json(summarise(rows)), as_json(claimed.to_json())
    return [Problem(REPORT, f"summary.{key}", f"the report says {_short(theirs.get(key))}, re-derived: "
                                              f"{_short(value)}")
            for key, value in mine.items() if theirs.get(key) != value]
