"""The pytest plugin: requirement items, -k selection, verdicts as outcomes, ids in JUnit properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.harness.helpers import vendor_manifest

pytest_plugins = ["pytester"]


def test_plugin_runs_selected_requirements(pytester: pytest.Pytester, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("skip-nonce-check")),
        "--usine-wave", "2026-W1", "--usine-category", "GP", "-k", "PRACAUTH-004 or PRACAUTH-003",
        f"--junitxml={junit}", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*PRACAUTH-004*MUST*fail*"])
    cases = etree.parse(str(junit)).findall(".//testcase")
    assert {c.get("name") for c in cases} == {"PRACAUTH-003", "PRACAUTH-004"}
    failed = next(c for c in cases if c.find("failure") is not None)
    props = {p.get("name"): p.get("value") for p in failed.findall("properties/property")}
    assert props["requirement"] == "PRACAUTH-004" and props["checks"] == "oidc.nonce_verified"


def test_document_proofs_are_skipped_with_what_to_provide(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")),
        "--usine-wave", "2026-W1", "--usine-category", "GP", "-k", "SECURITY-003", "-rs", "-q")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*document proof*"])


def test_usine_only_takes_referentials_and_globs_and_names_a_malformed_selector(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1", "--usine-category", "GP",
        "--usine-only", "PRACAUTH-01*,SECURITY-003", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*PRACAUTH-010", "*PRACAUTH-016", "*SECURITY-003"])
    assert "PRACAUTH-009" not in result.stdout.str()
    bad = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1", "--usine-only", "pracauth-1")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*'pracauth-1' is malformed*"])


def test_evidence_the_manifest_names_wrongly_is_a_usage_error_not_a_traceback_per_item(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """An [evidence] entry for a requirement the catalog lacks: once, as a usage error (it was an InputError
    traceback in every item, the run attempted again for each)."""
    manifest = tmp_path / "vendor.toml"
    manifest.write_text(vendor_manifest("reference").read_text(encoding="utf-8").split("[evidence]")[0]
                        + '[evidence]\nFOO-001 = "x.pdf"\n', encoding="utf-8")  # found before any driver starts
    result = pytester.runpytest_subprocess("--usine-vendor", str(manifest), "--usine-wave", "2026-W1",
                                           "--usine-only", "PRACAUTH")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "FOO-001" in result.stderr.str() and "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("seed", ["-5", "x", str(2**128)])
def test_a_seed_usine_run_refuses_is_refused(pytester: pytest.Pytester, seed: str) -> None:
    result = pytester.runpytest_subprocess("--usine-vendor", str(vendor_manifest("reference")),
                                           "--usine-wave", "2026-W1", "--usine-seed", seed)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--usine-seed" in result.stderr.str()


def test_a_seed_the_sandbox_drew_reproduces_through_the_plugin_too(pytester: pytest.Pytester) -> None:
    """The sandbox draws 128-bit seeds and report.json gives them; --usine-seed took only up to 2**62 (usine run
    --seed takes any), so a run could not be reproduced in the vendor's CI."""
    result = pytester.runpytest_subprocess("--usine-vendor", str(vendor_manifest("reference")),
                                           "--usine-wave", "2026-W1", "--usine-category", "GP",
                                           "--usine-only", "PRACAUTH-001", "--usine-seed", str(2**128 - 1), "-q")
    result.assert_outcomes(passed=1)


def test_a_running_sandbox_with_a_private_ca_is_reached_with_usine_sandbox_ca(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agency's sandbox serves its test PKI's certificate: --usine-sandbox-ca trusts it, as usine run --sandbox-ca
    (the plugin had no such option: a vendor's CI could not reach a sandbox with a private CA)."""
    import ssl

    import httpx

    from sandbox.config import SandboxConfig
    from sandbox.server import start_in_thread
    from sandbox.tls import make_test_pki

    admin = "admin-token-of-the-plugin-test"
    pki = make_test_pki(tmp_path_factory.mktemp("pki"))
    with start_in_thread(SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin_token=admin),
                         tls_cert=pki.server_cert, tls_key=pki.server_key) as running:
        trust = ssl.create_default_context(cafile=str(pki.ca_cert))
        with httpx.Client(base_url=running.base_url, verify=trust, headers={"Authorization": f"Bearer {admin}"}) as c:
            token = c.post("/admin/harness-tokens", json={"vendor_id": "usine-reference",
                                                          "software_id": "usine-reference.refapp"}).json()["token"]
        args = ["--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1",
                "--usine-category", "GP", "--usine-only", "PRACAUTH-001", "--usine-sandbox", running.base_url, "-q"]
        reached = pytester.runpytest_subprocess(*args, "--usine-sandbox-token", token,
                                                "--usine-sandbox-ca", str(pki.ca_cert))
        reached.assert_outcomes(passed=1)
        untrusted = pytester.runpytest_subprocess(*args, "--usine-sandbox-token", token)
        untrusted.assert_outcomes(failed=1)
        untrusted.stdout.fnmatch_lines(["*--sandbox-ca*"])
        monkeypatch.setenv("USINE_SANDBOX_TOKEN", token)  # the token from the environment, as usine run takes it
        pytester.runpytest_subprocess(*args, "--usine-sandbox-ca", str(pki.ca_cert)).assert_outcomes(passed=1)


def test_a_driver_program_that_cannot_start_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """As ``usine run``: a typo in driver.command[0] is said once, before any scenario (every item was in error)."""
    text = vendor_manifest("reference").read_text(encoding="utf-8").split("[evidence]")[0]
    assert 'command = ["{python}", "-m", "refapp.driver"]' in text
    manifest = tmp_path / "vendor.toml"
    manifest.write_text(text.replace('command = ["{python}", "-m", "refapp.driver"]',
                                     'command = ["no-such-driver-program-xyz"]'), encoding="utf-8")
    result = pytester.runpytest_subprocess("--usine-vendor", str(manifest), "--usine-wave", "2026-W1",
                                           "--usine-only", "PRACAUTH")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "no-such-driver-program-xyz" in result.stderr.str() and "not found on PATH" in result.stderr.str()


def test_xdist_spreading_the_items_over_workers_is_refused(pytester: pytest.Pytester) -> None:
    """-n 2 (xdist's default --dist load) gave each worker a share of the items and each made its own sandbox run:
    two attempts counted, two seeds, no run covering the selection. Refused before any worker starts."""
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1", "--usine-category", "GP",
        "--usine-only", "PRACAUTH-001,PRACAUTH-003", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*--dist load would spread*own sandbox run*--dist loadgroup*without -n*"])


def test_xdist_loadgroup_plays_the_items_as_one_run_on_one_worker(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """With --dist loadgroup every requirement item is one xdist_group: one worker, one run, one report."""
    import json

    out = tmp_path / "out"
    pytester.makepyfile(test_own="def test_one():\n    assert 1 + 1 == 2\n\n\ndef test_two():\n    assert 2 * 2 == 4\n")
    result = pytester.runpytest_subprocess(
        "--usine-vendor", str(vendor_manifest("reference")), "--usine-wave", "2026-W1", "--usine-category", "GP",
        "--usine-only", "PRACAUTH-001,PRACAUTH-003", "--usine-out", str(out), "-n", "2",
        "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=4)
    workers = {line.split("]")[0] for line in result.stdout.lines if "PRACAUTH-00" in line and "PASSED" in line}
    assert len(workers) == 1, result.stdout.str()  # both requirement items on one worker
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {r["id"]: r["verdict"] for r in report["requirements"]} == {"PRACAUTH-001": "pass", "PRACAUTH-003": "pass"}


def test_a_driver_url_nothing_listens_on_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """As ``usine run``: a driver URL with nothing behind it is said once (every item was in error, slowly)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = vendor_manifest("reference").read_text(encoding="utf-8").split("[evidence]")[0]
    manifest = tmp_path / "vendor.toml"
    manifest.write_text(text.replace("reuse = true", "").replace('command = ["{python}", "-m", "refapp.driver"]',
                                     f'url = "http://127.0.0.1:{port}/rpc"'), encoding="utf-8")
    result = pytester.runpytest_subprocess("--usine-vendor", str(manifest), "--usine-wave", "2026-W1",
                                           "--usine-only", "PRACAUTH")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert result.stderr.str().count(f"no driver answers at http://127.0.0.1:{port}/rpc") == 1
