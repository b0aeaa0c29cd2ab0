"""JUnit XML: one testsuite per referential, one testcase per requirement, ids in <properties>."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from lxml import etree

#: verdicts written as a JUnit failure: fail, and not-exercised (a MUST not exercised blocks a label like a failure)
FAILED = ("fail", "not-exercised")


def _j(value: Any) -> str:
    """Values as sorted JSON, so the same report always renders to the same bytes."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _findings_text(findings: list[dict[str, Any]]) -> str:
    lines = []
    for f in findings:
        where = f" [exchange {f['exchange']}]" if "exchange" in f else ""
        lines.append(f"- {f['message']}{where}")
        if "expected" in f or "got" in f:
            lines.append(f"  expected: {_j(f.get('expected'))}; got: {_j(f.get('got'))}")
    return "\n".join(lines)


def _problem_suite(root: etree._Element, report: dict[str, Any]) -> None:
    """The run's problems first: one testcase per scenario that did not run as planned, as a JUnit error."""
    by_scenario: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in report["problems"]:
        by_scenario[p["scenario"]].append(p)
    suite = etree.SubElement(root, "testsuite", name="usine run: steps that did not run as planned",
                             tests=str(len(by_scenario)), failures="0", errors=str(len(by_scenario)), skipped="0")
    for scenario, problems in by_scenario.items():
        case = etree.SubElement(suite, "testcase", classname=f"usine.{report['wave']}.{report['category']}.run",
                                name=f"scenario {scenario}", time="0.000")
        el = etree.SubElement(case, "error", message=f"{problems[0]['kind']} problem: {problems[0]['message']}",
                              type=problems[0]["kind"])
        el.text = "\n".join(f"- [{p['kind']}] " + (f"step {p['step']!r} ({p['action']}): " if p["step"] else "")
                            + p["message"] for p in problems)


def junit_xml(report: dict[str, Any]) -> bytes:
    """One testsuite per referential, one testcase per requirement; the run's problems first (as errors), a
    not-exercised requirement as a failure of type not-exercised (it blocks a label like one)."""
    rows = report["requirements"]
    by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_ref[r["ref"].split("#")[0]].append(r)
    check_ms = {c["id"]: c["duration_ms"] for c in report["checks"]}
    status = lambda r: r["verdict"]  # noqa: E731
    problems = report.get("problems", [])
    cases = len({p["scenario"] for p in problems})
    root = etree.Element("testsuites", name=f"usine {report['wave']} {report['category']}",
                         tests=str(len(rows) + cases), failures=str(sum(status(r) in FAILED for r in rows)),
                         errors=str(sum(status(r) == "error" for r in rows) + cases),
                         skipped=str(sum(status(r) in ("evidence-required", "not-applicable") for r in rows)),
                         time=f"{report['duration_s']:.3f}")
    if problems:
        _problem_suite(root, report)
    for ref, reqs in by_ref.items():
        suite = etree.SubElement(root, "testsuite", name=ref, tests=str(len(reqs)),
                                 failures=str(sum(status(r) in FAILED for r in reqs)),
                                 errors=str(sum(status(r) == "error" for r in reqs)),
                                 skipped=str(sum(status(r) in ("evidence-required", "not-applicable") for r in reqs)))
        for r in reqs:
            seconds = sum(check_ms.get(c, 0) for c in r["checks"]) / 1000
            case = etree.SubElement(suite, "testcase", classname=f"usine.{report['wave']}.{report['category']}.{ref.split('@')[0]}",
                                    name=f"{r['id']} {r['title']}", time=f"{seconds:.3f}")
            props = etree.SubElement(case, "properties")
            for name, value in (("requirement", r["id"]), ("ref", r["ref"]), ("level", r["level"]),
                                ("kind", r["kind"]), ("proof", r["method"]), ("checks", ",".join(r["checks"]))):
                etree.SubElement(props, "property", name=name, value=value)
            if r["verdict"] in FAILED:
                el = etree.SubElement(case, "failure", message=(r["findings"][0]["message"] if r["findings"] else "failed"),
                                      type=r["level"] if r["verdict"] == "fail" else "not-exercised")
                el.text = _findings_text(r["findings"])
            elif r["verdict"] == "error":
                el = etree.SubElement(case, "error", message=(r["findings"][0]["message"] if r["findings"] else "error"))
                el.text = _findings_text(r["findings"])
            elif r["verdict"] == "evidence-required":
                etree.SubElement(case, "skipped", message=f"{r['method']} proof: {r.get('evidence', '')}")
            elif r["verdict"] == "not-applicable":
                etree.SubElement(case, "skipped", message="not applicable: " + _findings_text(r["findings"]))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
