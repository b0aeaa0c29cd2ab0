"""A run that cannot be made (the sandbox unreachable, its certificate untrusted, a harness token of another software)
exits 2 saying what to do — never 1, which tells a vendor's CI that the software failed a MUST."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from conformity.cli import cli
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.tls import make_test_pki
from tests.harness.helpers import vendor_manifest

ADMIN = "admin-token-of-the-test"


@pytest.fixture(scope="module")
def https_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSandbox, Path]]:
    pki = make_test_pki(tmp_path_factory.mktemp("pki"))
    with start_in_thread(SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin_token=ADMIN),
                         tls_cert=pki.server_cert, tls_key=pki.server_key) as running:
        yield running, pki.ca_cert


def _run(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["run", "--wave", "2026-W1", "--vendor", str(vendor_manifest("reference")),
                                    "--only", "PRACAUTH-001", "--out", str(tmp_path / "out"), *args])


def test_an_unreachable_sandbox_exits_2(tmp_path: Path) -> None:
    r = _run(tmp_path, "--sandbox", "https://127.0.0.1:9", "--sandbox-token", "t")
    assert r.exit_code == 2 and "cannot reach the sandbox at https://127.0.0.1:9" in r.output, r.output


def test_an_untrusted_sandbox_certificate_says_to_give_its_ca(https_sandbox: tuple[RunningSandbox, Path],
                                                              tmp_path: Path) -> None:
    running, _ = https_sandbox
    r = _run(tmp_path, "--sandbox", running.base_url, "--sandbox-token", ADMIN)
    assert r.exit_code == 2 and "--sandbox-ca" in r.output and "ca.pem" in r.output, r.output
    harness_token = CliRunner().invoke(cli, ["sandbox", "harness-token", "--sandbox", running.base_url,
                                             "--admin-token", ADMIN, "--vendor", str(vendor_manifest("reference"))])
    assert harness_token.exit_code == 2 and "--sandbox-ca" in harness_token.output, harness_token.output


def test_a_harness_token_of_another_software_exits_2(https_sandbox: tuple[RunningSandbox, Path], tmp_path: Path) -> None:
    running, ca = https_sandbox
    trust = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=running.base_url, verify=trust, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        token = c.post("/admin/harness-tokens", json={"vendor_id": "acme", "software_id": "acme.ehr"}).json()["token"]
    r = _run(tmp_path, "--sandbox", running.base_url, "--sandbox-token", token, "--sandbox-ca", str(ca))
    assert r.exit_code == 2 and "bound to" in r.output and "harness token" in r.output, r.output


def test_harness_token_command_issues_a_token_only_with_the_admin_token(https_sandbox: tuple[RunningSandbox, Path]) -> None:
    running, ca = https_sandbox
    args = ["sandbox", "harness-token", "--sandbox", running.base_url, "--sandbox-ca", str(ca),
            "--vendor", str(vendor_manifest("reference"))]
    issued = CliRunner().invoke(cli, [*args, "--admin-token", ADMIN])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    refused = CliRunner().invoke(cli, [*args, "--admin-token", token])  # a harness token cannot mint another
    assert refused.exit_code == 2 and "403" in refused.output and "not its admin token" in refused.output, refused.output
    wrong = CliRunner().invoke(cli, [*args, "--admin-token", "not-a-token"])
    assert wrong.exit_code == 2 and "not its admin token" in wrong.output, wrong.output
