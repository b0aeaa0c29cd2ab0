"""``usine run`` as a vendor runs it: outputs, exit codes, JUnit properties; and bad vendor manifests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from conformity.cli import cli
from conformity.errors import InputError
from conformity.harness.vendor import load_vendor
from tests.harness.helpers import vendor_manifest


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", *args], catch_exceptions=False)
    return result.exit_code, result.output + result.stderr


def test_reference_subset_exits_0_and_writes_every_output(tmp_path: Path, jenkins_junit_xsd: Path) -> None:
    code, out = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")), "--category", "GP",
                    "--only", "PRACAUTH-004", "--only", "PATIENTID-007", "--out", str(tmp_path))
    assert code == 0, out
    for name in ("report.json", "junit.xml", "report.html", "bundle.zip"):
        assert (tmp_path / name).is_file(), name
    report = json.loads((tmp_path / "report.json").read_text())
    assert {r["id"] for r in report["requirements"]} == {"PRACAUTH-004", "PATIENTID-007"}
    junit = etree.fromstring((tmp_path / "junit.xml").read_bytes())
    cases = junit.findall(".//testcase")
    assert len(cases) == 2
    schema = etree.XMLSchema(etree.parse(str(jenkins_junit_xsd)))
    assert schema.validate(junit), schema.error_log  # what Jenkins, GitLab & co. accept
    props = {p.get("name"): p.get("value") for p in junit.findall("testsuite/properties/property")}
    assert props["requirement:PRACAUTH-004"].startswith("ref=PRACAUTH@") and "level=MUST" in props["requirement:PRACAUTH-004"]
    assert cases[0].findtext("system-out").split("\n")[0] in {"requirement: PRACAUTH-004", "requirement: PATIENTID-007"}
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "report.json", "junit.xml", "report.html"} <= names
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["wave"] == "2026-W1" and manifest["software"]["version"] == "1.0.0"


def test_defective_vendor_exits_1_with_the_failing_requirement(tmp_path: Path) -> None:
    code, out = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("skip-nonce-check")), "--category", "GP",
                    "--only", "PRACAUTH-004", "--out", str(tmp_path))
    assert code == 1, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["failed_must"] == ["PRACAUTH-004"]
    junit = etree.fromstring((tmp_path / "junit.xml").read_bytes())
    assert junit.find(".//testcase/failure") is not None
    html = (tmp_path / "report.html").read_text()
    assert html.index("PRACAUTH-004") < html.index("Scenarios") and "Trace excerpt" in html


def test_only_a_requirement_that_does_not_apply_exits_2(tmp_path: Path) -> None:
    code, out = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")), "--category", "PHARMACY",
                    "--only", "DOCSHARE-001", "--out", str(tmp_path))
    assert code == 2 and "referential DOCSHARE is not pinned by 2026-W1 PHARMACY" in out


@pytest.mark.parametrize("selector, message", [
    ("PRACAUTH", None), ("PATIENTID-01*", None), ("PRACAUTH,PATIENTID-001", None),
    ("pracauth", "'pracauth' is malformed: expected a requirement id (REF-001), a referential id (REF) or a "
                 "glob over requirement ids (REF-01*) (did you mean 'PRACAUTH'?)"),
    ("PRACAUTH-1", "'PRACAUTH-1' is malformed"),
    ("PRACAUTH-020", "PRACAUTH 1.0 (pinned by 2026-W1 GP) has no requirement PRACAUTH-020"),
    ("ETHICS", "referential ETHICS is not pinned by 2026-W1 GP"),
    ("NOPE", "no referential NOPE in the catalog"),
    ("DOCSHARE-9*", "pattern 'DOCSHARE-9*' matches no requirement of 2026-W1 GP"),
    ("", "--only: '' selects nothing: expected a requirement id (REF-001)"),  # an unset variable is not "everything"
    (" , ", "' , ' selects nothing"),
])
def test_only_takes_ids_referentials_and_globs_and_says_what_is_wrong(selector: str, message: str | None) -> None:
    code, out = run("--wave", "2026-W1", "--category", "GP", "--only", selector, "--plan", "--format", "json")
    if message is not None:
        assert code == 2 and message in out, out
        return
    assert code == 0, out
    plan = json.loads(out)
    ids = [r["id"] for r in plan["requirements"]]
    if selector == "PRACAUTH":
        assert ids == [f"PRACAUTH-{i:03d}" for i in range(1, 17)]
    elif selector == "PATIENTID-01*":
        assert ids == [f"PATIENTID-{i:03d}" for i in range(10, 16)]
    else:
        assert ids[0] == "PATIENTID-001" and len(ids) == 17


def test_plan_prints_scenarios_steps_and_actions_without_running(tmp_path: Path) -> None:
    code, out = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")), "--only", "PRACAUTH-001",
                    "--plan", "--out", str(tmp_path / "out"))
    assert code == 0 and not (tmp_path / "out").exists(), out
    assert "pracauth.login_nominal" in out and "1. perform practitioner.login (login)" in out
    assert "2. perform patient.lookup (lookup)" in out
    assert "patient.lookup       declared by PATIENTID; called by pracauth.login_nominal" in out
    code, out = run("--wave", "2026-W1", "--plan")
    assert code == 2 and "--plan needs --vendor or --category" in out


def _manifest(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "vendor.toml"
    p.write_text(text)
    return p


GOOD = '''format = "usine.vendor/1"
vendor_id = "acme"
software = "Acme"
version = "1.0"
registration_id = "R1"
category = "GP"
[driver]
command = ["{python}", "driver.py"]
'''


@pytest.mark.parametrize("text,where", [
    (GOOD.replace('version = "1.0"', 'version = "1.0'), "line"),
    (GOOD.replace('category = "GP"', "category = 3"), "category"),
    (GOOD.replace('[driver]\ncommand = ["{python}", "driver.py"]', "[driver]\ntimeout = 5"), "driver"),
    (GOOD + 'url = "http://127.0.0.1:9/rpc"\n', "driver"),
    (GOOD.replace('vendor_id = "acme"', 'vendor_id = "acme"\ncolour = "blue"'), "colour"),
    (GOOD.replace('vendor_id = "acme"\n', ""), "vendor_id"),
    (GOOD + 'cwd = "not-here"\n', "driver.cwd"),
    (GOOD + 'url = "https://driver.example/rpc"\n', "not both"),
    (GOOD.replace('command = ["{python}", "driver.py"]', "timeout = 5"), "not neither"),
    (GOOD.replace('vendor_id = "acme"', 'vendor_id = "acme"\nsoftware_id = "medilab.lis"'), "software_id"),
    (GOOD.replace('vendor_id = "acme"', 'vendor_id = "acme"\nsoftware_id = "acme.lab.lis"'), "namespace"),
])
def test_bad_vendor_manifest_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = _manifest(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_vendor(path)
    assert str(path) in str(info.value) and where in str(info.value)


@pytest.mark.parametrize("timeout", ["nan", "+nan", "-nan"])
def test_a_driver_timeout_that_is_not_a_number_is_refused(tmp_path: Path, timeout: str) -> None:
    """``timeout = nan`` passed the schema (NaN compares false with every bound), and the harness then waited for
    ever for a driver that never answers (a queue's ``get(timeout=nan)`` never returns)."""
    path = _manifest(tmp_path, GOOD + f"timeout = {timeout}\n")
    with pytest.raises(InputError) as info:
        load_vendor(path)
    assert str(path) in str(info.value) and "driver.timeout" in str(info.value) and "seconds" in str(info.value)


@pytest.mark.parametrize("key,value", [("software", "Acme\\u0000EHR"), ("software", "Acme\\r\\nX-Other: 1"),
                                       ("software", "Acme\\u202eRHE"), ("version", "1.0\\n"),
                                       ("registration_id", "REG\\u0007"), ("vendor_name", "Acme\\u200bInc")])
def test_control_and_invisible_characters_in_the_identity_are_refused(tmp_path: Path, key: str, value: str) -> None:
    """A NUL, a line break or a right-to-left override in the software's name went as is into the signed manifest, the
    reports and the agency's review pages (where ``Acme\\u202eRHE`` reads as another name)."""
    text = GOOD.replace('vendor_id = "acme"', 'vendor_id = "acme"\nvendor_name = "Acme"') if key == "vendor_name" else GOOD
    line = next(x for x in text.splitlines() if x.startswith(f"{key} = "))
    path = _manifest(tmp_path, text.replace(line, f'{key} = "{value}"'))
    with pytest.raises(InputError) as info:
        load_vendor(path)
    assert str(path) in str(info.value) and key in str(info.value) and "U+" in str(info.value)


def test_names_in_any_script_stay_welcome(tmp_path: Path) -> None:
    v = load_vendor(_manifest(tmp_path, GOOD.replace('software = "Acme"', 'software = "Logiciel Médical – 医療 ©"')))
    assert v.software == "Logiciel Médical – 医療 ©"


@pytest.mark.parametrize("line,where", [('env = {"A=B" = "1"}', "driver.env"), ('env = {"" = "1"}', "driver.env"),
                                        ('env = {"1X" = "1"}', "driver.env"),
                                        ('env = {A = "x\\u0000y"}', "driver.env.A"),
                                        ('command = ["{python}", "driver.py", "-\\u0000"]', "driver.command[2]")])
def test_a_driver_environment_or_argument_no_process_can_take_is_refused(tmp_path: Path, line: str,
                                                                         where: str) -> None:
    """``env = {"A=B" = "1"}`` or a NUL in a value or an argument: every scenario's process start raised ValueError
    ('illegal environment variable name', 'embedded null byte') and the run ended on a traceback."""
    text = GOOD + line + "\n" if line.startswith("env") else GOOD.replace('command = ["{python}", "driver.py"]', line)
    path = _manifest(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_vendor(path)
    assert str(path) in str(info.value) and f"at {where}:" in str(info.value), str(info.value)


def test_python_placeholder_and_paths(tmp_path: Path) -> None:
    v = load_vendor(_manifest(tmp_path, GOOD))
    import sys

    assert v.driver.command[0] == sys.executable and v.driver.cwd == tmp_path
    assert v.software_id == "acme.acme"


@pytest.mark.parametrize("vendor_id,software", [("a" * 40, "Cabinet de radiologie " * 5), ("b" * 62, "X-Ray Suite"),
                                               ("c" * 61, "--")])
def test_the_default_software_id_fits_the_64_characters_a_harness_token_takes(tmp_path: Path, vendor_id: str,
                                                                              software: str) -> None:
    """``vendor_id`` + a dot + the software's slug reached 127 characters: the sandbox refused its harness token (422)
    and every run of the manifest failed."""
    v = load_vendor(_manifest(tmp_path, GOOD.replace('vendor_id = "acme"', f'vendor_id = "{vendor_id}"')
                                            .replace('software = "Acme"', f'software = "{software}"')))
    from sandbox.admin import HarnessTokenRequest

    assert len(v.software_id) <= 64 and v.software_id.startswith(vendor_id + ".") and not v.software_id.endswith("-")
    HarnessTokenRequest(vendor_id=vendor_id, software_id=v.software_id)  # what the sandbox takes


def test_a_vendor_id_too_long_for_any_software_id_is_said(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_vendor(_manifest(tmp_path, GOOD.replace('vendor_id = "acme"', f'vendor_id = "{"d" * 63}"')))
    assert "vendor_id" in str(info.value) and "no software id" in str(info.value)


@pytest.mark.parametrize("make", ["under a file", "bundle.zip a folder"])
def test_an_out_folder_that_cannot_take_the_outputs_is_refused_before_the_run(tmp_path: Path, make: str) -> None:
    """Found after the whole run, it was a traceback (exit 1, read as a failed MUST) with reports half-written."""
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "sub" if make == "under a file" else tmp_path / "out"
    if make == "bundle.zip a folder":
        (out / "bundle.zip").mkdir(parents=True)
    code, text = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")), "--category", "GP",
                     "--only", "PRACAUTH-004", "--out", str(out))
    assert code == 2 and "--out" in text and "Traceback" not in text, text
    assert "scenario" not in text.lower()  # nothing ran
    assert not (out.is_dir() and {p.name for p in out.iterdir()} - {"bundle.zip"})


def test_a_runs_outputs_are_written_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle cannot be written (disk full, say): no new report is left beside the previous run's bundle."""
    import conformity.harness.outputs as outputs

    code, _ = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")), "--category", "GP",
                  "--only", "PRACAUTH-004", "--out", str(tmp_path))
    assert code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_bundle", full)
    result = CliRunner().invoke(cli, ["run", "--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")),
                                      "--category", "GP", "--only", "PRACAUTH-004", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "No space left on device" in result.output, result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the previous run's four, unchanged


def test_an_output_path_under_a_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for args in (["wave", "show", "2027-W2", "-c", "GP", "--format", "html", "-o", str(tmp_path / "f" / "spec.html")],
                 ["driver", "init", str(tmp_path / "f" / "drv"), "--lang", "python"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and result.output.startswith("error: ") and result.exception is not None \
            and isinstance(result.exception, SystemExit), result.output


def test_ctrl_c_exits_130_not_1_and_writes_no_report(tmp_path: Path) -> None:
    """1 is a failed MUST to a vendor's CI: an interrupted run says so by 130 (128 + SIGINT), as shells do."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "conformity", "run", "--wave", "2026-W1", "--vendor",
                             str(vendor_manifest("reference")), "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # once the run has begun (its first scenario reported)
        seen.append(line)
        if line.startswith("  "):
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_category_the_wave_lacks_names_the_manifest(tmp_path: Path) -> None:
    """The skeleton's placeholder left in vendor.toml: said with the file and what to do."""
    path = _manifest(tmp_path, GOOD.replace('category = "GP"', 'category = "CATEGORY"'))
    code, out = run("--wave", "2026-W1", "--vendor", str(path), "--plan")
    assert code == 2 and str(path) in out and "'CATEGORY' is not a category of wave 2026-W1" in out, out


def test_driver_init_category_without_wave_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["driver", "init", str(tmp_path / "d"), "--lang", "python", "-c", "GP"])
    assert result.exit_code == 2 and "--category needs --wave" in result.output and not (tmp_path / "d").exists()


def test_driver_init_with_a_wave_and_no_category_leaves_the_category_to_fill_in(tmp_path: Path) -> None:
    """``usine driver init d --lang python --wave 2027-W2`` wrote ``category = "HOSPITAL"`` (the wave's first) and
    declared only its actions, saying nothing: a GP vendor's runs then tested the hospital category. Now every
    category's actions are declared and the category stays a placeholder the run refuses until it is filled in."""
    result = CliRunner().invoke(cli, ["driver", "init", str(tmp_path / "d"), "--lang", "python", "--wave", "2027-W2"])
    assert result.exit_code == 0, result.output
    manifest = (tmp_path / "d" / "vendor.toml").read_text()
    assert 'category = "CATEGORY"' in manifest and "HOSPITAL" not in manifest
    assert "fill in the category" in result.output
    from conformity.catalog import load_catalog

    catalog = load_catalog()
    every = {a.name for cat in catalog.wave("2027-W2").categories for a in catalog.specification("2027-W2", cat).actions}
    declared = (tmp_path / "d" / "actions.py").read_text()
    assert every and all(f"not implemented: {name}" in declared for name in every)


@pytest.mark.parametrize("command,words", [('["python9", "driver.py"]', "program 'python9' not found on PATH"),
                                          ('["./driver.sh"]', "is not executable"),
                                          ('["bin/driver"]', "not found at")])
def test_a_driver_program_that_cannot_start_is_bad_input_before_the_run(tmp_path: Path, command: str,
                                                                       words: str) -> None:
    """A vendor.toml naming a program that is not there (a typo, an interpreter not installed, a script without its
    execute bit) started the sandbox, ran every scenario to 'could not be started', wrote a report and a bundle of
    nothing and exited 1, as if the software had been tested: it is a mistake in the manifest (exit 2, nothing
    written), said with the key and the fix."""
    (tmp_path / "driver.sh").write_text("#!/bin/sh\n")
    (tmp_path / "driver.sh").chmod(0o644)
    path = _manifest(tmp_path, GOOD.replace('["{python}", "driver.py"]', command))
    code, out = run("--wave", "2026-W1", "--vendor", str(path), "--only", "PRACAUTH-001", "--out", str(tmp_path / "out"))
    assert code == 2 and "driver.command" in out and words in out and str(path) in out, out
    assert not (tmp_path / "out").exists()
    code, out = run("--wave", "2026-W1", "--vendor", str(path), "--plan")  # a plan starts nothing: it still prints
    assert code == 0, out


def _closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_driver_url_nothing_listens_on_is_said_once_before_the_run(tmp_path: Path) -> None:
    """A driver URL with no driver behind it: the run played every scenario, each failing 'cannot reach the driver',
    and wrote a report of identical failures (exit 1, an attempt counted). It is the setup's mistake: said once,
    with the address, what was tried and how to start the driver, exit 2, nothing written."""
    import time

    url = f"http://127.0.0.1:{_closed_port()}/rpc"
    path = _manifest(tmp_path, GOOD.replace('command = ["{python}", "driver.py"]', f'url = "{url}"'))
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["run", "--wave", "2026-W1", "--vendor", str(path), "--only", "PRACAUTH",
                                      "--out", str(tmp_path / "out")], catch_exceptions=False)
    code, out = result.exit_code, result.stderr
    assert code == 2, out
    assert out.count(f"no driver answers at {url}") == 1 and "driver.url" in out, out
    assert "refused" in out and "Start your driver" in out and "driver.command" in out, out
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 10  # no scenario waited for it


def test_a_driver_url_that_takes_connections_passes_the_check(tmp_path: Path) -> None:
    import socket

    from conformity.harness.vendor import driver_url_problem

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/rpc"
        path = _manifest(tmp_path, GOOD.replace('command = ["{python}", "driver.py"]', f'url = "{url}"'))
        assert driver_url_problem(load_vendor(path)) is None
    problem = driver_url_problem(load_vendor(path))  # closed now
    assert problem is not None and problem.where == "driver.url" and "refused" in problem.message


def test_a_sandbox_drawn_seed_is_written_as_decimal_digits_javascript_keeps(tmp_path: Path) -> None:
    """The sandbox draws 128-bit seeds; report.json and the bundle's manifest wrote them as JSON numbers, which a
    JavaScript reader (a CI dashboard, the report's own page scripts) rounds to a double: another seed. Above
    2**53 - 1 a seed is its decimal digits as a string (as in the label), everywhere the same, and read back."""
    from conformity.runs import JCS_MAX_INT, read_seed, seed_commitment
    from conformity.signing import unverified_payload

    code, out = run("--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")), "--category", "GP",
                    "--only", "PRACAUTH-004", "--out", str(tmp_path))
    assert code == 0, out
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    seed = report["seed"]
    assert isinstance(seed, str) and seed.isdigit() and int(seed) > JCS_MAX_INT, seed
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
        trace = unverified_payload(json.loads(zf.read("traces/" + report["scenarios"][0]["id"] + ".json")))
    assert manifest["seed"] == seed
    assert seed_commitment(read_seed(seed)) == trace["session"]["run"]["seed_commitment"]  # the run's own seed
    assert f"seed {seed} " in (tmp_path / "report.html").read_text(encoding="utf-8")
    junit = etree.fromstring((tmp_path / "junit.xml").read_bytes())
    assert {p.get("value") for p in junit.findall("testsuite/properties/property[@name='seed']")} == {seed}


@pytest.mark.parametrize("vendor_id", ["acme.", "ac..me", ".acme", "acme.lab."])
def test_a_vendor_id_with_a_stray_dot_is_refused(tmp_path: Path, vendor_id: str) -> None:
    """The manifest took ``acme.`` and ``ac..me`` (the sandbox's pattern lets a dot anywhere after the first
    character): their default software ids (``acme..acme``) are in no vendor's namespace as the agency reads it."""
    path = _manifest(tmp_path, GOOD.replace('vendor_id = "acme"', f'vendor_id = "{vendor_id}"'))
    with pytest.raises(InputError, match="vendor_id") as caught:
        load_vendor(path)
    assert "dot" in str(caught.value)


@pytest.mark.parametrize("software_id", ["acme.", "acme..x"])
def test_a_software_id_with_a_stray_dot_is_refused(tmp_path: Path, software_id: str) -> None:
    path = _manifest(tmp_path, GOOD.replace('vendor_id = "acme"', f'vendor_id = "acme"\nsoftware_id = "{software_id}"'))
    with pytest.raises(InputError, match="software_id"):
        load_vendor(path)
