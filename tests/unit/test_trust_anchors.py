"""A CA file that holds no certificate is named, with its option (OpenSSL said only "error: [X509:
NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found (_ssl.c:4154)"); a sandbox that refuses the harness token
says so (it said "cannot reach the sandbox … Client error '403 Forbidden'", though it was reached)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from conformity.cli import cli
from conformity.errors import InputError
from conformity.files import trust_anchor
from conformity.harness.sandbox_access import unreachable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate\n")
    return path


def test_a_ca_file_without_a_certificate_is_named_with_its_option(garbage: Path) -> None:
    with pytest.raises(InputError, match=r"--sandbox-ca: .*ca\.pem: not a PEM CA certificate"):
        trust_anchor(garbage, "--sandbox-ca")


@pytest.mark.parametrize("args", [
    ("submit", "{zip}", "--agency", "https://127.0.0.1:9", "--token", "t", "--ca", "{ca}"),
    ("sandbox", "harness-token", "--sandbox", "https://127.0.0.1:9", "--admin-token", "t", "--sandbox-ca", "{ca}",
     "--vendor", str(REPO / "examples/vendors/health/reference/vendor.toml")),
])
def test_commands_name_the_ca_file(args: tuple[str, ...], garbage: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(b"PK")
    result = CliRunner().invoke(cli, [a.format(ca=garbage, zip=bundle) for a in args])
    assert result.exit_code == 2, result.output
    assert f"{garbage}: not a PEM CA certificate" in result.output


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_not_called_unreachable(status: int) -> None:
    request = httpx.Request("GET", "http://sandbox.test/admin/listeners")
    response = httpx.Response(status, request=request)
    error = httpx.HTTPStatusError("refused", request=request, response=response)
    said = str(unreachable("http://sandbox.test", error))
    assert said.startswith(f"the sandbox at http://sandbox.test refused the token given ({status})")
    assert "cannot reach" not in said
