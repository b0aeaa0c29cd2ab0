"""A member of the wrong type in what the software sent fails the rule it breaks, never an error verdict: the checks
read a recorded request as the software wrote it (the sandbox refuses it, the trace keeps it)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from conformity.checks.evaluate import evaluate_check
from tests.runs import VendorRun

#: with the golden and discrimination tests, on one worker: the reference runs are made once
pytestmark = pytest.mark.xdist_group("reference")


def first_post(trace: dict[str, Any], service: str, path: str) -> dict[str, Any]:
    """The request body (JSON) of the first POST to ``service`` whose path ends with ``path``."""
    body: dict[str, Any] = next(e for e in trace["exchanges"] if e.get("kind") == "http" and e.get("service") == service
                                and e["request"]["method"] == "POST"
                                and e["request"]["path"].endswith(path))["request"]["body"]["json"]
    return body


CASES = [
    # (requirement, check, scenario, service, path suffix, change)
    ("DOCSHARE-008", "cda.confidentiality_code_valid", "docshare.documents", "dmp", "/documents",
     lambda b: b["metadata"].__setitem__("confidentiality", True)),
    ("MESSAGING-002", "messaging.recipient_in_directory", "messaging.send", "mss", "/messages",
     lambda b: b.__setitem__("to", 1.5)),
    ("MESSAGING-005", "messaging.attachment_patient_id_valid", "messaging.send", "mss", "/messages",
     lambda b: b["attachments"][0].__setitem__("patient", "P1")),
    ("DOCSHARE-021", "docshare.retry_no_duplicate", "docshare.retry", "dmp", "/documents",
     lambda b: b["metadata"].__setitem__("unique_id", ["1.2.250.1.999.77.1"])),
    ("DOCSHARE-021", "docshare.retry_network_no_duplicate", "docshare.retry_refused", "dmp", "/documents",
     lambda b: b["metadata"].__setitem__("unique_id", {"root": "1.2.250.1.999.77.1"})),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0].replace('-', '_')}-{c[1]}" for c in CASES])
def test_a_member_of_another_type_fails_its_rule(reference_run: Callable[[str, str], VendorRun],
                                                 case: tuple[Any, ...]) -> None:
    requirement, check_id, scenario, service, path, change = case
    ref = reference_run("2027-W2", "HOSPITAL")
    assert ref.verdicts[check_id].status == "pass"
    changed = copy.deepcopy(ref.traces[scenario])
    change(first_post(changed, service, path))
    verdict = evaluate_check(check_id, {**ref.traces, scenario: changed}, ref.ctx)
    assert verdict.status == "fail", verdict.to_json()
    assert any(f.concerns(requirement) for f in verdict.findings)


@pytest.mark.parametrize("attachments", [None, 0, True], ids=["null", "number", "boolean"])
def test_attachments_that_are_no_list_are_no_attachments_not_an_error(reference_run: Callable[[str, str], VendorRun],
                                                                      attachments: Any) -> None:
    """MESSAGING-004/-005: a message whose attachments member is not a list carries no attachment to judge."""
    ref = reference_run("2027-W2", "HOSPITAL")
    changed = copy.deepcopy(ref.traces["messaging.send"])
    first_post(changed, "mss", "/messages")["attachments"] = attachments
    for check_id in ("messaging.attachment_xdm_valid", "messaging.attachment_patient_id_valid"):
        verdict = evaluate_check(check_id, {**ref.traces, "messaging.send": changed}, ref.ctx)
        assert verdict.status != "error", (check_id, verdict.to_json())
