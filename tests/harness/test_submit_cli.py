"""``usine submit`` against a service that is not (or stops being) the agency's: a clear error, never a traceback."""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity.cli import cli

RECEIPT = {"id": "sub_1", "bytes": 2, "sha256": "00", "status": "received"}
#: what the service answers (status, content type, body) to the upload (POST) and to the follow-ups (GET)
SERVICES: dict[str, tuple[tuple[int, str, bytes], tuple[int, str, bytes]]] = {
    "a web page, not the agency": ((200, "text/html", b"<html>welcome</html>"), (200, "text/html", b"<html/>")),
    "a receipt, then a web page": ((201, "application/json", json.dumps(RECEIPT).encode()),
                                   (200, "text/html", b"<html>maintenance</html>")),
    "an error whose body is a list": ((500, "application/json", b"[1, 2]"), (500, "application/json", b"[]")),
    "a receipt without its id": ((201, "application/json", b'{"status": "received"}'), (200, "text/html", b"")),
}


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[str]:
    post, get = SERVICES[request.param]

    class Handler(BaseHTTPRequestHandler):
        def _send(self, answer: tuple[int, str, bytes]) -> None:
            status, kind, body = answer
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._send(post)

        def do_GET(self) -> None:
            self._send(get)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("service", sorted(SERVICES), indirect=True)
def test_an_answer_that_is_not_the_agency_s_is_said_not_a_traceback(service: str, tmp_path: Path) -> None:
    """A --agency URL pointing at a web page (HTTP 200, HTML) died on KeyError: 'id'; a service answering the upload
    and then a maintenance page died on KeyError: 'status'; an error answer whose body was a JSON list on
    AttributeError."""
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:  # what submit's own check lets through: a zip holding a manifest
        zf.writestr("manifest.json", "{}")
    result = CliRunner().invoke(cli, ["submit", str(bundle), "--agency", service, "--token", "t", "--timeout", "5"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert service in result.output and "agency" in result.output, result.output


@pytest.mark.parametrize("timeout", ["-1", "nan", "1e9"])
def test_a_wait_out_of_range_is_a_usage_error(timeout: str, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(b"PK")
    result = CliRunner().invoke(cli, ["submit", str(bundle), "--agency", "http://127.0.0.1:9", "--token", "t",
                                      "--timeout", timeout])
    assert result.exit_code == 2 and "--timeout" in result.output, result.output
