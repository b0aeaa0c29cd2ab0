"""Documents, messaging, directory: the real harness, sandbox and driver processes, reference and defects.

The reference vendor passes every requirement of these areas for HOSPITAL and GP in both waves; each
defective vendor fails exactly its requirements (and, for a defect that makes the shared record refuse
every document, the requirements that need an accepted document) with findings that say why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformity.catalog import load_catalog
from conformity.checks.evaluate import EvalContext
from conformity.harness.events import RunFinished, ScenarioFinished
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner, eval_context
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.vendor import load_vendor
from tests.harness.conftest import vendor_manifest, verdicts

#: check ids of this area (documents, messaging, directory, INS carried, software identified)
AREA = ("cda.", "docshare.", "service.", "messaging.", "directory.", "ins.only_qualified_carried",
        "client.software_identified")

#: what fails when the shared record refuses every document a software submits
NEEDS_ACCEPTED_DOCUMENTS = {"DOCSHARE-011", "DOCSHARE-012", "DOCSHARE-014", "DOCSHARE-020", "DOCSHARE-022",
                            "DOCSHARE-023", "DOCSHARE-031", "ETHICS-002"}

#: defect → (requirements that must fail in 2027-W2 HOSPITAL, a requirement and what its finding shows)
DEFECTS: dict[str, tuple[set[str], str, dict[str, str]]] = {
    "duplicates-on-retry": ({"DOCSHARE-021"}, "DOCSHARE-021", {"where": "metadata.unique_id", "message": "new uniqueId"}),
    "ins-of-unqualified": ({"DOCSHARE-005", "PATIENTID-010", "MESSAGING-005"}, "PATIENTID-010",
                           {"where": "attachments[0].patient.ins", "message": "identity document not checked"}),
    "missing-author-id": ({"DOCSHARE-006"} | NEEDS_ACCEPTED_DOCUMENTS, "DOCSHARE-006",
                          {"where": "/ClinicalDocument/author/assignedAuthor/id", "message": "no national id"}),
    "wrong-loinc-code": ({"DOCSHARE-009", "DOCSHARE-010", "DOCSHARE-012"}, "DOCSHARE-010",
                         {"where": "/ClinicalDocument/code/@code", "message": "11490-0 is not allowed"}),
    "message-to-unlisted-address": ({"MESSAGING-002", "MESSAGING-003", "DIRECTORY-004", "DIRECTORY-005"},
                                    "MESSAGING-003", {"where": "/messages", "message": "not listed in the directory"}),
    "wrong-ins-oid": ({"DOCSHARE-004", "MESSAGING-005"} | NEEDS_ACCEPTED_DOCUMENTS, "DOCSHARE-004",
                      {"where": "/ClinicalDocument/recordTarget/patientRole/id/@root", "message": "INS OID"}),
}


Outcome = tuple[dict[str, Any], dict[str, dict[str, Any]], EvalContext]
_RUNS: dict[tuple[str, str, str], Outcome] = {}


def run_area(access: SandboxAccess, vendor: str, wave: str, category: str) -> Outcome:
    """The real harness on this area's requirements: (report, traces by scenario, evaluation context), once per
    vendor × wave × category in a test session (the mutation tests reuse the reference's traces)."""
    key = (vendor, wave, category)
    if key not in _RUNS:
        v = load_vendor(vendor_manifest(vendor))
        plan = make_plan(load_catalog(), wave, category, area_requirements(wave, category))
        report: dict[str, Any] = {}
        traces: dict[str, dict[str, Any]] = {}
        for event in Runner(plan, v, 0, access).run():
            if isinstance(event, ScenarioFinished) and event.trace is not None:
                traces[event.scenario] = event.trace
            elif isinstance(event, RunFinished):
                report = event.report
        _RUNS[key] = (report, traces, eval_context(plan, v.identity()))
    return _RUNS[key]


def area_requirements(wave: str, category: str) -> tuple[str, ...]:
    """The automated requirements of the wave × category whose checks belong to this area."""
    spec = load_catalog().specification(wave, category)
    return tuple(a.id for a in spec.requirements
                 if any(c.startswith(AREA) for c in a.requirement.proof.checks))


def findings_of(report: dict[str, Any], requirement: str) -> list[dict[str, Any]]:
    return next(r for r in report["requirements"] if r["id"] == requirement).get("findings", [])


@pytest.mark.slow
@pytest.mark.parametrize(("wave", "category"), [("2026-W1", "HOSPITAL"), ("2026-W1", "GP"), ("2027-W2", "HOSPITAL"),
                                                ("2027-W2", "GP")])
def test_reference_passes_every_requirement_of_the_area(harness_sandbox: SandboxAccess, wave: str,
                                                        category: str, cda_schema: Path) -> None:
    ids = area_requirements(wave, category)
    report, traces, _ = run_area(harness_sandbox, "reference", wave, category)
    got = verdicts(report)
    assert set(got) == set(ids)
    assert {r: v for r, v in got.items() if v != "pass"} == {}, [
        (r["id"], r["findings"][:2]) for r in report["requirements"] if r["verdict"] != "pass"]
    assert "docshare.retry" in traces and "messaging.send" in traces and "directory.searches" in traces


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(DEFECTS),
                         ids=[f"{d}->{'+'.join(sorted(DEFECTS[d][0]))}" for d in sorted(DEFECTS)])
def test_defective_vendor_fails_its_requirements_only(harness_sandbox: SandboxAccess, defect: str,
                                                     cda_schema: Path) -> None:
    expected, main, finding = DEFECTS[defect]
    report, _, _ = run_area(harness_sandbox, defect, "2027-W2", "HOSPITAL")
    failing = {r: v for r, v in verdicts(report).items() if v != "pass"}
    assert failing == dict.fromkeys(expected, "fail")
    explained = findings_of(report, main)
    assert any(finding["where"] in f.get("where", "") and finding["message"] in f["message"] and "exchange" in f
               for f in explained), explained


@pytest.mark.parametrize("wave", ["2026-W1", "2027-W2"])
def test_every_category_plans_only_pinned_actions(wave: str) -> None:
    """A scenario of this area never uses an action its wave × category does not pin (PHARMACY 2026-W1 has no
    DOCSHARE, so the requirements it shares with DOCSHARE are checked on scenarios without document actions)."""
    catalog, vendor = load_catalog(), load_vendor(vendor_manifest("reference"))
    for category in catalog.waves[wave].categories:
        plan = make_plan(catalog, wave, category, area_requirements(wave, category))
        Runner(plan, vendor, 0, None)  # type: ignore[arg-type]  # raises when a scenario uses an unpinned action
        assert ("docshare.v2_content" in plan.scenarios) == (wave == "2027-W2")
