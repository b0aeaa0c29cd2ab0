"""JUnit XML: one testsuite per referential, one testcase per requirement, valid against Jenkins' JUnit XSD.

The file keeps to the schema the main CI consumers read (Jenkins' ``junit-4.xsd`` from dtkit, also
what GitLab and most report viewers accept): no ``<properties>`` inside a ``<testcase>`` and no
``skipped`` attribute on ``<testsuites>``. What a CI server displays stays: testcase ``name``
(``REQ-ID title``) and ``classname``, the ``failure`` / ``error`` message and text, the
``skipped`` text, and each testcase's ``system-out``. Requirement ids travel in two places a reader
finds them: the testsuite's ``<properties>`` (``requirement:<REQ-ID>`` → level, kind, proof, checks,
plus the suite's ``ref``, ``wave`` and ``category``) and the first lines of each testcase's
``system-out`` (``requirement: REQ-ID``, ``ref``, ``level``…). Rendering is a pure function of
report.json: the agency renders it again and compares bytes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from lxml import etree

from conformity.harness.report import RequirementRow, rows_of
from conformity.reporting.text import finding_text, visible

SKIPPED = ("evidence-required", "not-applicable")
#: verdicts written as a JUnit failure: fail, and not-exercised (a MUST not exercised blocks a label like a failure)
FAILED = ("fail", "not-exercised")


def _j(value: Any) -> str:
    """Values as sorted JSON, so the same report always renders to the same bytes."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A child element; vendor text in its attributes and text made visible (XML holds no control character)."""
    el = etree.SubElement(parent, tag, {k: visible(v) for k, v in attrs.items()})
    if text is not None:
        el.text = visible(text)
    return el


def _findings_text(findings: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {finding_text(f)}" for f in findings)


def _facts(r: RequirementRow) -> list[tuple[str, str]]:
    return [("requirement", r.id), ("ref", r.ref), ("level", r.level), ("kind", r.kind),
            ("proof", r.method), ("checks", ",".join(r.checks)), ("verdict", r.verdict)]


def _counts(reqs: list[RequirementRow]) -> dict[str, str]:
    return {"tests": str(len(reqs)), "failures": str(sum(r.verdict in FAILED for r in reqs)),
            "errors": str(sum(r.verdict == "error" for r in reqs))}


def _testcase(suite: etree._Element, report: dict[str, Any], ref: str, r: RequirementRow, seconds: float) -> None:
    case = _sub(suite, "testcase", name=f"{r.id} {r.title}",
                classname=f"usine.{report['wave']}.{report['category']}.{ref.split('@')[0]}", time=f"{seconds:.3f}")
    # Jenkins' XSD: skipped, then error(s), then failure(s), then system-out
    findings = list(r.findings)
    if r.verdict == "evidence-required":
        _sub(case, "skipped", f"{r.method} proof: {r.evidence or ''}")
    elif r.verdict == "not-applicable":
        _sub(case, "skipped", "not applicable: " + _findings_text(findings))
    elif r.verdict == "error":
        _sub(case, "error", _findings_text(findings), message=(r.first_message if findings else "error"))
    elif r.verdict in FAILED:
        _sub(case, "failure", _findings_text(findings), message=(r.first_message if findings else "failed"),
             type=r.level if r.verdict == "fail" else "not-exercised")
    out = "\n".join(f"{name}: {value}" for name, value in _facts(r))
    if findings and r.verdict not in (*FAILED, "error", "not-applicable"):
        out += "\nfindings:\n" + _findings_text(findings)
    _sub(case, "system-out", out + "\n")


def _problem_suite(root: etree._Element, report: dict[str, Any]) -> None:
    """The run's problems first: one testcase per scenario that did not run as planned, as a JUnit error."""
    by_scenario: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in report["problems"]:
        by_scenario[p["scenario"]].append(p)
    suite = etree.SubElement(root, "testsuite", name="usine run: steps that did not run as planned",
                             tests=str(len(by_scenario)), failures="0", errors=str(len(by_scenario)), skipped="0")
    for scenario, problems in by_scenario.items():
        case = _sub(suite, "testcase", classname=f"usine.{report['wave']}.{report['category']}.run",
                    name=f"scenario {scenario}", time="0.000")
        text = "\n".join(f"- [{p['kind']}] " + (f"step {p['step']!r} ({p['action']}): " if p["step"] else "")
                         + p["message"] for p in problems)
        _sub(case, "error", text, message=f"{problems[0]['kind']} problem: {problems[0]['message']}", type=problems[0]["kind"])


def junit_xml(report: dict[str, Any]) -> bytes:
    rows = rows_of(report)
    by_ref: dict[str, list[RequirementRow]] = defaultdict(list)
    for r in rows:
        by_ref[r.ref.split("#")[0]].append(r)
    check_ms = {c["id"]: c["duration_ms"] for c in report["checks"]}
    problems = report.get("problems", [])
    counts = _counts(rows)
    cases = len({p["scenario"] for p in problems})
    counts["tests"] = str(int(counts["tests"]) + cases)
    counts["errors"] = str(int(counts["errors"]) + cases)
    root = etree.Element("testsuites", name=f"usine {report['wave']} {report['category']}", **counts,
                         time=f"{report['duration_s']:.3f}")
    if problems:
        _problem_suite(root, report)
    for ref, reqs in by_ref.items():
        times = [sum(check_ms.get(c, 0) for c in r.checks) / 1000 for r in reqs]
        suite = etree.SubElement(root, "testsuite", name=ref, **_counts(reqs),
                                 skipped=str(sum(r.verdict in SKIPPED for r in reqs)), time=f"{sum(times):.3f}")
        props = etree.SubElement(suite, "properties")
        for name, value in (("ref", ref), ("wave", report["wave"]), ("category", report["category"]),
                            ("run_id", report["run_id"]), ("seed", str(report["seed"]))):  # the seed's digits, as in report.json
            etree.SubElement(props, "property", name=name, value=value)
        for r in reqs:
            value = "; ".join(f"{k}={v}" for k, v in _facts(r)[1:])
            _sub(props, "property", name=f"requirement:{r.id}", value=value)
        for r, seconds in zip(reqs, times, strict=True):
            _testcase(suite, report, ref, r, seconds)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out
