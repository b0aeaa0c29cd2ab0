"""junit.xml is valid against the JUnit XSD the main CI servers use (Jenkins' junit-4.xsd) and keeps what they show."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from conformity.reporting.junit import junit_xml


def requirement(req_id: str, verdict: str, **extra: Any) -> dict[str, Any]:
    return {"id": req_id, "ref": f"{req_id.split('-')[0]}@1.0#{req_id}", "title": f"title of {req_id}",
            "level": "MUST", "kind": "interoperability", "method": "automated", "checks": [f"check.{req_id.lower()}"],
            "verdict": verdict, "findings": [], **extra}


REPORT: dict[str, Any] = {
    "wave": "2026-W1", "category": "GP", "duration_s": 1.5, "run_id": "run_x", "seed": str(2**64 + 1),
    "checks": [{"id": "check.pracauth-001", "duration_ms": 12}, {"id": "check.pracauth-002", "duration_ms": 30}],
    "requirements": [
        requirement("PRACAUTH-001", "pass"),
        requirement("PRACAUTH-002", "fail", findings=[{"message": "nonce <not> checked & \"accepted\"",
                                                       "exchange": 4, "expected": None, "got": {"a": 1}}]),
        requirement("PATIENTID-003", "error", findings=[{"message": "the driver answered garbage"}]),
        requirement("PATIENTID-013", "evidence-required", method="document", evidence="a screenshot"),
        requirement("DOCSHARE-009", "not-applicable", findings=[{"message": "no CDA level 3 in GP"}]),
        requirement("DOCSHARE-010", "not-exercised", findings=[{"message": "no document was sent"}]),
    ],
}


@pytest.fixture(scope="module")
def schema(jenkins_junit_xsd: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(jenkins_junit_xsd)))


def test_junit_is_valid_against_the_jenkins_xsd(schema: etree.XMLSchema) -> None:
    doc = etree.fromstring(junit_xml(REPORT))
    assert schema.validate(doc), schema.error_log
    assert doc.get("skipped") is None and not doc.findall(".//testcase/properties")


def test_junit_keeps_what_ci_servers_show_and_the_requirement_ids() -> None:
    doc = etree.fromstring(junit_xml(REPORT))
    assert (doc.get("tests"), doc.get("failures"), doc.get("errors")) == ("6", "2", "1")
    cases = {c.get("name").split()[0]: c for c in doc.iter("testcase")}
    assert set(cases) == {r["id"] for r in REPORT["requirements"]}
    failure = cases["PRACAUTH-002"].find("failure")
    assert failure.get("message") == 'nonce <not> checked & "accepted"' and "[exchange 4]" in failure.text
    assert cases["PRACAUTH-002"].get("classname") == "usine.2026-W1.GP.PRACAUTH"
    assert cases["PATIENTID-003"].find("error").get("message") == "the driver answered garbage"
    assert cases["PATIENTID-013"].find("skipped").text == "document proof: a screenshot"
    assert "no CDA level 3 in GP" in cases["DOCSHARE-009"].find("skipped").text
    for req_id, case in cases.items():
        out = case.find("system-out").text
        assert out.startswith(f"requirement: {req_id}\nref: ") and "level: MUST" in out
    not_exercised = cases["DOCSHARE-010"].find("failure")  # a MUST not exercised blocks a label like a failure
    assert not_exercised.get("type") == "not-exercised" and not_exercised.get("message") == "no document was sent"
    props = {p.get("name"): p.get("value") for p in doc.iterfind("testsuite/properties/property")}
    assert props["requirement:PRACAUTH-002"].startswith("ref=PRACAUTH@1.0#PRACAUTH-002; level=MUST")
    assert {k for k in props if k.startswith("requirement:")} == {f"requirement:{r['id']}" for r in REPORT["requirements"]}
    assert (props["run_id"], props["seed"]) == ("run_x", str(2**64 + 1))  # the seed's digits, never a float


def test_junit_renders_the_same_bytes_for_the_same_report() -> None:
    assert junit_xml(REPORT) == junit_xml(copy.deepcopy(REPORT))


PROBLEMS = [{"scenario": "login", "step": "login", "action": "practitioner.login", "kind": "driver",
             "message": "the driver wrote garbage on stdout"},
            {"scenario": "login", "step": None, "action": None, "kind": "driver", "message": "driver exited"}]


def test_junit_puts_the_run_problems_first_and_stays_valid(schema: etree.XMLSchema) -> None:
    doc = etree.fromstring(junit_xml({**REPORT, "problems": PROBLEMS}))
    assert schema.validate(doc), schema.error_log
    assert (doc.get("tests"), doc.get("errors")) == ("7", "2")
    first = doc.find("testsuite")
    assert first.get("name") == "usine run: steps that did not run as planned"
    error = first.find("testcase/error")
    assert error.get("message") == "driver problem: the driver wrote garbage on stdout"
    assert "step 'login' (practitioner.login)" in error.text and "driver exited" in error.text
