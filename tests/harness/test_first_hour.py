"""A vendor's first hour: the driver skeleton, a driver in another language than Python driven to a pass, and what
a broken driver, an unsupported or unimplemented action and a service refusal read as (never a conformity failure,
never a pass: the cause first, the step named).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lxml import etree

from conformity.catalog import load_catalog
from conformity.cli import cli
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.vendor import load_vendor

JS_CLIENT = Path(__file__).parent / "js_vendor" / "actions.js"
Run = Callable[..., dict[str, Any]]


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and node is missing (.ci/run installs Debian's nodejs)", pytrace=False)
        pytest.skip("node (Debian's nodejs) is not installed")
    return found


def skeleton(folder: Path, lang: str, *extra: str) -> Path:
    """``usine driver init`` into ``folder``; the vendor.toml path."""
    result = CliRunner().invoke(cli, ["driver", "init", str(folder), "--lang", lang, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder / "vendor.toml"


@pytest.fixture
def run_manifest(harness_sandbox: SandboxAccess) -> Run:
    def run(manifest: Path, only: tuple[str, ...], wave: str = "2026-W1", category: str = "GP") -> dict[str, Any]:
        plan = make_plan(load_catalog(), wave, category, only)
        return run_to_end(Runner(plan, load_vendor(manifest), 0, harness_sandbox)).report

    return run


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in report["requirements"] if r["method"] == "automated"}


def test_driver_init_writes_a_working_skeleton_and_refuses_to_overwrite(tmp_path: Path) -> None:
    manifest = skeleton(tmp_path / "py", "python", "--wave", "2026-W1", "-c", "GP")
    actions = (tmp_path / "py" / "actions.py").read_text()
    assert 'raise NotImplementedError("not implemented: patient.lookup")' in actions and "input schema:" in actions
    assert load_vendor(manifest).category == "GP"
    again = CliRunner().invoke(cli, ["driver", "init", str(tmp_path / "py"), "--lang", "python"])
    assert again.exit_code == 2 and "already exist" in again.output
    bad = CliRunner().invoke(cli, ["driver", "init", str(tmp_path / "x"), "--lang", "cobol"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()


def test_a_manifest_left_with_the_kits_placeholders_is_pointed_out_and_not_once_filled_in(tmp_path: Path) -> None:
    """The skeleton runs as generated, so a vendor may work for days as ``your-company``/``REG-0000`` and submit a
    bundle naming no one the agency knows: every run says which placeholders are left, until they are not."""
    manifest = skeleton(tmp_path / "py", "python", "--wave", "2026-W1", "-c", "GP")
    plan = ["run", "--vendor", str(manifest), "--wave", "2026-W1", "--plan"]
    r = CliRunner().invoke(cli, plan)
    assert r.exit_code == 0, r.output
    assert "still says the driver kit's placeholder for vendor_id, software, registration_id" in r.output, r.output
    text = manifest.read_text(encoding="utf-8").replace('"your-company"', '"acme"').replace('"Your Software"', '"Acme EHR"')
    manifest.write_text(text.replace('"REG-0000"', '"REG-4242"'), encoding="utf-8")
    r = CliRunner().invoke(cli, plan)
    assert r.exit_code == 0 and "placeholder" not in r.output, r.output


@pytest.mark.parametrize("lang", ["python", "javascript"])
def test_the_skeleton_first_run_is_all_error_never_a_failure_nor_a_pass(tmp_path: Path, run_manifest: Run,
                                                                        lang: str) -> None:
    if lang == "javascript":
        node()
    manifest = skeleton(tmp_path / lang, lang, "--wave", "2026-W1", "-c", "GP")
    report = run_manifest(manifest, ("PRACAUTH", "PATIENTID"))
    found = verdicts(report)
    assert set(found.values()) <= {"error", "not-exercised"} and "error" in found.values(), found
    row = next(r for r in report["requirements"] if r["id"] == "PRACAUTH-001")
    assert "not implemented: practitioner.login" in row["findings"][0]["message"]
    assert "step 'login' (practitioner.login)" in row["findings"][0]["message"]
    assert report["problems"] and all(p["kind"] == "driver" for p in report["problems"])
    assert not report["summary"]["passed"] and report["summary"]["failed_must"] == []


def js_vendor(tmp_path: Path, env: dict[str, str] | None = None, edit: tuple[str, str] | None = None) -> Path:
    """The JavaScript skeleton completed with a minimal client (Node's standard library only); ``edit`` replaces one
    line of that client (a defect, an action left out)."""
    node()
    manifest = skeleton(tmp_path / "js", "javascript", "--wave", "2026-W1", "-c", "GP")
    client = JS_CLIENT.read_text(encoding="utf-8")
    if edit:
        assert client.count(edit[0]) == 1, edit[0]
        client = client.replace(*edit)
    (tmp_path / "js" / "actions.js").write_text(client, encoding="utf-8")
    if env:
        manifest.write_text(manifest.read_text() + "\n[driver.env]\n" + "".join(f'{k} = "{v}"\n' for k, v in env.items()))
    return manifest


def test_a_javascript_driver_passes_pracauth(tmp_path: Path, run_manifest: Run) -> None:
    report = run_manifest(js_vendor(tmp_path), ("PRACAUTH",))
    assert report["summary"]["passed"] and report["problems"] == [], report["summary"]
    assert set(verdicts(report).values()) == {"pass"} and len(verdicts(report)) == 15


def reused(manifest: Path) -> Path:
    text = manifest.read_text()
    assert "reuse = false" in text  # the skeleton says where
    manifest.write_text(text.replace("reuse = false", "reuse = true"))
    return manifest


def test_a_reused_javascript_driver_passes_pracauth_in_one_process(tmp_path: Path,
                                                                   harness_sandbox: SandboxAccess) -> None:
    plan = make_plan(load_catalog(), "2026-W1", "GP", ("PRACAUTH",))
    runner = Runner(plan, load_vendor(reused(js_vendor(tmp_path))), 0, harness_sandbox, parallel=1)
    report = run_to_end(runner).report
    assert report["summary"]["passed"] and report["problems"] == [], report["summary"]
    assert set(verdicts(report).values()) == {"pass"} and len(verdicts(report)) == 15
    assert (runner.drivers.started, runner.drivers.reused) == (1, len(plan.scenarios) - 1) and len(plan.scenarios) > 1


def test_a_skeleton_without_reset_gets_a_process_per_scenario_even_with_reuse(tmp_path: Path,
                                                                              harness_sandbox: SandboxAccess) -> None:
    manifest = reused(skeleton(tmp_path / "py", "python", "--wave", "2026-W1", "-c", "GP"))
    plan = make_plan(load_catalog(), "2026-W1", "GP", ("PRACAUTH",))
    runner = Runner(plan, load_vendor(manifest), 0, harness_sandbox, parallel=1)
    report = run_to_end(runner).report
    assert (runner.drivers.started, runner.drivers.reused) == (len(plan.scenarios), 0)
    assert set(verdicts(report).values()) <= {"error", "not-exercised"}
    assert not any("reset" in str(p) for p in report["problems"])  # a refused reset is no problem of a scenario


def test_a_driver_that_refuses_message_send_gets_patientid_010_not_exercised(tmp_path: Path, run_manifest: Run) -> None:
    report = run_manifest(js_vendor(tmp_path), ("PATIENTID-010", "PATIENTID-001"))
    row = next(r for r in report["requirements"] if r["id"] == "PATIENTID-010")
    assert row["verdict"] == "not-exercised", row
    messages = [f["message"] for f in row["findings"]]
    assert any("step 'with_document' (message.send)" in m and "not implemented: message.send" in m for m in messages)
    assert not any("checked" in m for m in messages)  # no count of messages that were never sent
    assert verdicts(report)["PATIENTID-001"] == "pass"


def test_a_service_refusal_is_the_cause_not_a_conformity_failure(tmp_path: Path, run_manifest: Run) -> None:
    """No practitioner logged in before the look-ups of a scenario: the identity service answers 401 token-missing."""
    report = run_manifest(js_vendor(tmp_path, {"SKIP_IMPLICIT_LOGIN": "1"}), ("PATIENTID-010",))
    refused = [p for p in report["problems"] if p["kind"] == "refused"]
    assert refused and "401 token-missing" in refused[0]["message"] and refused[0]["action"] == "patient.lookup"
    row = next(r for r in report["requirements"] if r["id"] == "PATIENTID-010")
    assert row["verdict"] in ("error", "not-exercised")
    assert any("401 token-missing" in f["message"] for f in row["findings"][:3]), row["findings"][:3]


def test_a_stray_print_reads_as_a_driver_problem_at_the_top_of_every_output(tmp_path: Path) -> None:
    manifest = skeleton(tmp_path / "py", "python", "--wave", "2026-W1", "-c", "GP")
    actions = tmp_path / "py" / "actions.py"
    actions.write_text(actions.read_text().replace('    """Configure your software for a new test session',
                                                   '    print("debug: initialize")\n    """Configure'))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--wave", "2026-W1", "--vendor", str(manifest), "--only", "PRACAUTH-001",
                                      "--out", str(out)])
    assert result.exit_code == 1
    text = result.output + result.stderr
    assert "YOUR DRIVER DID NOT ANSWER PROPERLY" in text
    assert text.index("YOUR DRIVER DID NOT ANSWER PROPERLY") < text.index("PRACAUTH-001")
    flat = " ".join(text.split())  # as the terminal wrapped it
    assert "not a JSON-RPC 2.0 answer" in flat and "debug: initialize" in flat and "log to standard error" in flat
    report = json.loads((out / "report.json").read_text())
    assert report["problems"][0]["kind"] == "driver" and report["problems"][0]["action"] == "initialize"
    row = report["requirements"][0]
    assert row["verdict"] in ("error", "not-exercised") and "driver" in row["findings"][0]["message"]
    html = (out / "report.html").read_text()
    assert html.index("Your driver did not answer properly") < html.index("PRACAUTH-001")
    suites = etree.fromstring((out / "junit.xml").read_bytes()).findall("testsuite")
    assert suites[0].get("name").startswith("usine run") and suites[0].find("testcase/error") is not None


#: initialize answers outside the protocol: actions as a string (once a substring test: "practitioner.login" in it)
BAD_INITIALIZE = {"actions as a string": {"software": {"name": "x", "version": "1"}, "actions": "practitioner.login"},
                  "actions as a word": {"software": "x", "actions": "all"},
                  "not an object": ["practitioner.login"]}


@pytest.mark.parametrize("case", sorted(BAD_INITIALIZE))
def test_an_initialize_answer_outside_the_protocol_is_the_driver_s_problem(tmp_path: Path, run_manifest: Run,
                                                                           case: str) -> None:
    """Its list of actions is what the run relies on: an answer the protocol's schema refuses runs no step, said as
    the driver's problem at initialize (not "the software does not support …"), with what it answered."""
    script = tmp_path / "driver.py"
    script.write_text("import json, sys\nfor line in sys.stdin:\n    msg = json.loads(line)\n"
                      f"    result = {BAD_INITIALIZE[case]!r} if msg['method'] == 'initialize' else None\n"
                      "    print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': result}), flush=True)\n"
                      "    if msg['method'] == 'shutdown':\n        break\n")
    manifest = tmp_path / "vendor.toml"
    manifest.write_text('format = "usine.vendor/1"\nvendor_id = "acme"\nsoftware = "Acme"\nversion = "1.0"\n'
                        'registration_id = "REG-1"\ncategory = "GP"\n[driver]\ncommand = ["{python}", "driver.py"]\n')
    report = run_manifest(manifest, ("PRACAUTH-001",))
    assert verdicts(report)["PRACAUTH-001"] in ("error", "not-exercised")
    [problem] = report["problems"]
    assert problem["kind"] == "driver" and problem["action"] == "initialize", problem
    assert "answered outside the driver protocol" in problem["message"] and "initialize_result" in problem["message"]


def test_an_action_left_out_of_initialize_is_not_exercised_with_its_cause(tmp_path: Path, run_manifest: Run) -> None:
    """The driver does not declare patient.lookup: the requirements judged on its steps are not-exercised, the step
    and the reason first, never a pass nor a failure."""
    manifest = js_vendor(tmp_path, edit=('  "patient.lookup": patient_lookup,\n', ""))
    report = run_manifest(manifest, ("PATIENTID-001", "PRACAUTH-014"))
    assert verdicts(report) == {"PATIENTID-001": "not-exercised", "PRACAUTH-014": "not-exercised"}, verdicts(report)
    row = next(r for r in report["requirements"] if r["id"] == "PATIENTID-001")
    first = row["findings"][0]["message"]
    assert "step 'match_document' (patient.lookup)" in first and "does not support action patient.lookup" in first
    assert report["problems"] and {p["kind"] for p in report["problems"]} == {"unsupported"}


def test_a_refusal_the_failure_is_about_stays_a_failure(tmp_path: Path, run_manifest: Run) -> None:
    """The software sends its ID token as the Bearer credential: the identity service refuses it (401), which keeps
    the look-ups from running (PATIENTID-001 in error, the refusal first), but PRACAUTH-014 — the rule about which
    token goes where — is a failure that names what the software sent, not an error blaming the service."""
    manifest = js_vendor(tmp_path, edit=("accessToken: tokens.access_token }", "accessToken: tokens.id_token }"))
    report = run_manifest(manifest, ("PATIENTID-001", "PRACAUTH-014"))
    rows = {r["id"]: r for r in report["requirements"]}
    assert rows["PRACAUTH-014"]["verdict"] == "fail", rows["PRACAUTH-014"]["findings"][:2]
    assert "sent the ID token as a Bearer credential" in rows["PRACAUTH-014"]["findings"][0]["message"]
    assert rows["PATIENTID-001"]["verdict"] == "error"
    assert "HTTP 401 token-invalid" in rows["PATIENTID-001"]["findings"][0]["message"]
    assert any(p["kind"] == "refused" for p in report["problems"])
