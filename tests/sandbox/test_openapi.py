"""The OpenAPI description kept in the repo is the one the app serves."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

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


def service_answers(doc: dict[str, Any]) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(method, path, status, JSON content) of every success answer of the services software talks to: each pack's
    services and identity provider in a test session (not the harness's trace read), and the production role."""
    found = []
    for path, operations in doc["paths"].items():
        if not (path.startswith(("/s/{session_id}/", "/prod/")) and path != "/s/{session_id}/trace"):
            continue
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith("2") and "application/json" in answer.get("content", {}):
                    found.append((method.upper(), path, int(status), answer["content"]["application/json"]))
    return found


def test_every_service_answer_has_examples_valid_against_its_schema() -> None:
    """A vendor reads what each service answers from real examples, and each example is what its schema says."""
    doc = json.loads(KEPT.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource("urn:openapi", Resource.from_contents(doc, DRAFT202012))
    answers = service_answers(doc)
    assert len(answers) >= 40, len(answers)
    missing = [f"{m} {p} {s}" for m, p, s, content in answers if not content.get("examples")]
    assert not missing, f"answers without examples: {missing}"
    for method, path, status, content in answers:
        schema = {"$ref": "urn:openapi#/components/schemas/" + content["schema"]["$ref"].rsplit("/", 1)[1]} \
            if "$ref" in content["schema"] else json.loads(json.dumps(content["schema"]).replace(
                '"#/components/', '"urn:openapi#/components/'))
        validator = Draft202012Validator(schema, registry=registry)
        for name, example in content["examples"].items():
            assert example["summary"], (method, path, status, name)
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example["value"])]
            assert not errors, (method, path, status, name, errors[:3])


def test_the_token_examples_say_their_audience_and_the_lookup_its_answers() -> None:
    """The access token of the examples is a JWT whose aud names the services; the look-up shows its three answers,
    its bearer authentication, its 401 and the identification header."""
    doc = json.loads(KEPT.read_text(encoding="utf-8"))
    token = doc["paths"]["/s/{session_id}/idp/token"]["post"]["responses"]["200"]["content"]["application/json"]
    access = next(iter(token["examples"].values()))["value"]["access_token"]
    header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in access.split(".")[:2])
    assert header["typ"] == "at+jwt" and any(a.endswith("/insi") for a in claims["aud"])
    lookup = doc["paths"]["/s/{session_id}/insi/lookup"]["post"]
    assert lookup["security"] == [{"accessToken": []}]
    assert doc["components"]["securitySchemes"]["accessToken"]["scheme"] == "bearer"
    assert {e["value"]["outcome"] for e in lookup["responses"]["200"]["content"]["application/json"]["examples"].values()} \
        == {"match", "no_match", "multiple"}
    assert "WWW-Authenticate" in lookup["responses"]["401"]["headers"]
    [agent] = [p for p in lookup["parameters"] if p["in"] == "header"]
    assert agent["name"] == "User-Agent" and "registration id" in agent["description"]


def test_registering_an_installation_documents_its_unreadable_catalog_answer() -> None:
    """POST /admin/installations answers 503 catalog-unavailable (the catalog of waves unreadable), not a fault: its
    OpenAPI says so, without the faults' Retry-After."""
    answers = json.loads(KEPT.read_text())["paths"]["/admin/installations"]["post"]["responses"]
    assert "catalog-unavailable" in answers["503"]["description"] and "headers" not in answers["503"]
    sessions = json.loads(KEPT.read_text())["paths"]["/admin/sessions"]["post"]["responses"]
    assert "503" not in sessions
