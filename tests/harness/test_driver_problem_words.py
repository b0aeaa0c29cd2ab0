"""A vendor's first broken driver: the problem line at the top of the report says what to fix.

The three ways a vendor breaks a driver first — a wrong field in an answer, an answer too slow, a crash — each
read, before this, as a line that named the step but not the fix: "does not match the output schema" (which
field?), "no answer to perform within 5 s" (which limit?), "driver closed its output during perform" (why?).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conformity.checks.causes import (
    SCHEMA_ERRORS_SHOWN,
    TIMEOUT_ADVICE,
    driver_message,
    perform_problems,
    schema_errors_said,
)
from conformity.checks.trace import Note, TraceView
from conformity.harness.driver import DriverFailure, StdioDriver
from conformity.harness.vendor import DriverSpec

CRASHES = """\
import json, sys
line = sys.stdin.readline()
print("connecting to the local database", file=sys.stderr, flush=True)
print("fatal: lost the connection to the local database", file=sys.stderr, flush=True)
sys.exit(1)
"""

HANGS = """\
import sys, time
sys.stdin.readline()
time.sleep(30)
"""


def _failure(tmp_path: Path, source: str, timeout: float = 5.0) -> dict[str, object]:
    script = tmp_path / "driver.py"
    script.write_text(source)
    d = StdioDriver(DriverSpec(command=(sys.executable, str(script)), timeout=timeout, cwd=tmp_path))
    try:
        with pytest.raises(DriverFailure) as info:
            d.call("perform", {"action": "document.submit", "input": {}})
    finally:
        d.close()
    return info.value.to_json()


def test_a_crash_is_said_with_the_last_line_the_driver_wrote_on_stderr(tmp_path: Path) -> None:
    """Before: 'the driver exited (exit code 1) on document.submit: driver closed its output during perform'."""
    failure = _failure(tmp_path, CRASHES)
    text = driver_message(failure, "on document.submit")
    assert failure["kind"] == "crash"
    assert "exited (exit code 1)" in text
    assert text.endswith("its last line on standard error: 'fatal: lost the connection to the local database'"), text


def test_a_crash_without_stderr_says_nothing_more() -> None:
    text = driver_message({"kind": "crash", "message": "m", "exit_code": 1, "stderr_tail": ["", "  "]}, "at x")
    assert text == "the driver exited (exit code 1) at x: m"


def test_a_slow_answer_says_where_the_limit_is_set(tmp_path: Path) -> None:
    """Before: 'no answer to perform within 1 s', nothing on where that second comes from."""
    failure = _failure(tmp_path, HANGS, timeout=1.0)
    text = driver_message(failure, "on document.submit")
    assert failure["kind"] == "timeout"
    assert "within 1 s" in text and text.endswith(f"({TIMEOUT_ADVICE})"), text
    assert "vendor.toml" in TIMEOUT_ADVICE


def test_a_url_drivers_slow_answer_does_not_point_at_vendor_toml() -> None:
    """A witnessed run's limit is the agency's, not the vendor.toml's: no advice there."""
    text = driver_message({"kind": "timeout", "message": "no answer to perform within 30 s",
                           "url": "https://driver.example/rpc"}, "on x")
    assert "vendor.toml" not in text


def _trace_with(record: dict[str, object]) -> tuple[TraceView, Note]:
    trace = TraceView({"exchanges": [{"seq": 7, "kind": "note", "note": "driver.perform", "data": record}]},
                      "patientid.lookups")
    return trace, trace.notes("driver.perform")[0]


def test_a_wrong_field_is_named_in_the_problem_line() -> None:
    """Before: 'the driver's output does not match the output schema of patient.lookup', the field only in details."""
    errors = ["'status' is a required property", "Additional properties are not allowed ('identity_status' was "
                                                  "unexpected)"]
    trace, note = _trace_with({"action": "patient.lookup", "name": "match", "output_invalid": errors,
                               "output": {"identity_status": "qualified"}})
    [problem] = perform_problems(trace, note)
    assert problem.kind == "driver" and problem.seq == 7
    assert problem.message == ("the driver's output does not match the output schema of patient.lookup: 'status' is "
                               "a required property; Additional properties are not allowed ('identity_status' was "
                               "unexpected)")
    assert problem.details["errors"] == errors


def test_many_schema_errors_are_cut_short_and_counted() -> None:
    errors = [f"error {i}" for i in range(SCHEMA_ERRORS_SHOWN + 2)]
    said = schema_errors_said(errors)
    assert said == "; ".join(errors[:SCHEMA_ERRORS_SHOWN]) + "; and 2 more"
    assert schema_errors_said(errors[:1]) == "error 0"


def test_an_outputs_schema_errors_say_where_they_are() -> None:
    """A wrong field inside an object read "'birth_name' is a required property": inside what? The harness records
    each error of an action's output with its place, as the catalog's own schema errors are said."""
    import jsonschema

    from conformity import plugins
    from conformity.catalog import load_catalog
    from conformity.catalog.schema import schema_errors
    from conformity.harness.plan import make_plan

    plugins.register_all()
    plan = make_plan(load_catalog(), "2027-W2", "GP", ("PATIENTID-001",))
    lookup = next(a for a in plan.spec.actions if a.name == "patient.lookup")
    validator = jsonschema.Draft202012Validator(lookup.output)
    traits = {"birth_date": "1999-02-24", "first_names": "ZOE", "sex": "F", "birth_place_code": "13055"}
    out = {"identity_status": "qualified", "ins": None, "oid": None, "patient_ref": "P1", "traits": traits}
    errors = schema_errors(validator, out)
    assert "status: required key is missing" in errors, errors
    assert "traits.birth_name: required key is missing" in errors, errors
    assert any(e.startswith("identity_status: unknown key 'identity_status' (allowed here: ") for e in errors), errors
    assert schema_errors(validator, out, most=1) == errors[:1]


@pytest.mark.parametrize("outcome,detail", [
    ("duplicate-member", "the body is ambiguous JSON: member 'purpose' is named twice in one object"),
    ("query-param-repeated", "query parameter 'kind' is given more than once: a service reads one value of each"),
])
def test_a_request_the_sandbox_refused_as_ambiguous_is_the_cause_not_a_failure(outcome: str, detail: str) -> None:
    """A software sending a JSON member twice got 400 duplicate-member from the data space, then read "fail: the
    consent asked for has no expiry" (the check could not read the body the software meant): the refusal, with the
    sandbox's reason, is now the step's problem, first finding of an error verdict."""
    from conformity.checks.causes import attribute
    from conformity.checks.model import Finding, Verdict

    refused = {"seq": 13, "kind": "http", "service": "dataspace", "outcome": outcome, "outcome_details": {"detail": detail},
               "request": {"method": "POST", "path": "/s/ses_x/dataspace/consents"}, "response": {"status": 400}}
    trace = TraceView({"exchanges": [
        {"seq": 12, "kind": "note", "note": "driver.perform", "data": {"action": "home.read", "name": "before"}},
        refused,
        {"seq": 14, "kind": "note", "note": "driver.perform",
         "data": {"action": "consent.request", "name": "grant", "output": {"granted": False}}}]},
        "housing.consent_lifecycle")
    problems = perform_problems(trace, trace.notes("driver.perform")[1])
    assert [(p.kind, p.seq) for p in problems] == [("refused", 13)]
    assert problems[0].message == (f"the dataspace service refused the software's request POST /consents: HTTP 400 "
                                   f"{outcome} ({detail})")
    judged = attribute(Verdict("fail", (Finding("the consent asked for has no expiry", exchange=13),)), problems)
    assert judged.status == "error" and judged.findings[0].message.endswith(problems[0].message)


def test_a_400_the_software_earned_otherwise_is_no_cause() -> None:
    """Only the sandbox's ambiguity refusals are causes: a 400 for what the software sent wrong stays the check's."""
    trace = TraceView({"exchanges": [
        {"seq": 12, "kind": "note", "note": "driver.perform", "data": {"action": "home.read", "name": "before"}},
        {"seq": 13, "kind": "http", "service": "dataspace", "outcome": "invalid-request",
         "request": {"method": "POST", "path": "/s/ses_x/dataspace/consents"}, "response": {"status": 400}},
        {"seq": 14, "kind": "note", "note": "driver.perform", "data": {"action": "consent.request", "name": "grant"}}]},
        "housing.consent_lifecycle")
    assert perform_problems(trace, trace.notes("driver.perform")[1]) == []
