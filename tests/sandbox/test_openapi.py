"""The OpenAPI description kept in the repo is the one the app serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from conformity.cli import cli
from sandbox.server import RunningSandbox

KEPT = Path(__file__).resolve().parents[2] / "sandbox" / "openapi.json"


def test_kept_openapi_matches_the_app(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(cli, ["sandbox", "openapi", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == json.loads(KEPT.read_text()), (
        "sandbox/openapi.json is stale: run `usine sandbox openapi -o sandbox/openapi.json`")


def test_served_openapi_lists_every_service(sandbox_server: RunningSandbox) -> None:
    doc = httpx.get(sandbox_server.base_url + "/openapi.json").json()
    paths = set(doc["paths"])
    for prefix in ("/admin/sessions", "/s/{session_id}/idp/token", "/s/{session_id}/insi/lookup",
                   "/s/{session_id}/dmp/documents", "/s/{session_id}/mss/messages",
                   "/s/{session_id}/directory/practitioners", "/prod/dmp/documents", "/prod/mss/messages",
                   "/.well-known/usine-trace-keys"):
        assert prefix in paths, prefix
