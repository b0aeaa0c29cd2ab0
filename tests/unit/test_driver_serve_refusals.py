"""``usine driver serve-http`` names what it cannot serve with: before, "error: [SSL] PEM lib (_ssl.c:3905)" for a
certificate that is not PEM, "error: Address already in use" and "error: Permission denied" for a port."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conformity.cli import cli
from tests.helpers import port_in_use

VENDOR = Path(__file__).resolve().parents[2] / "examples/vendors/health/reference/vendor.toml"


def serve(*args: str) -> str:
    result = CliRunner().invoke(cli, ["driver", "serve-http", "--vendor", str(VENDOR), *args])
    assert result.exit_code == 2, result.output
    return result.output


def test_a_certificate_that_is_not_pem_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM\n")
    said = serve("--cert", str(garbage), "--key", str(garbage), "--port", "0")
    assert f"--cert/--key: cannot serve TLS with {garbage} and {garbage}: not a PEM certificate (--cert)" in said


def test_a_port_in_use_is_said(tmp_path: Path) -> None:
    from sandbox.tls import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    with port_in_use() as port:
        said = serve("--cert", str(pki.server_cert), "--key", str(pki.server_key), "--host", "127.0.0.1",
                     "--port", str(port))
    assert f"--port: cannot listen on 127.0.0.1:{port}: address already in use" in said


def test_a_port_out_of_range_is_a_usage_error() -> None:
    """It was a traceback: OverflowError: bind(): port must be 0-65535."""
    result = CliRunner().invoke(cli, ["driver", "serve-http", "--vendor", str(VENDOR), "--cert", str(VENDOR),
                                      "--key", str(VENDOR), "--port", "99999"])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "99999 is not in the range 0<=x<=65535" in result.output
