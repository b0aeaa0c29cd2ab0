"""The initialize request the harness sends a driver is one the published driver protocol schema accepts, for a run
of every shipped pack (the schema required one pack's fixtures and services: a housing driver checking its requests
against it refused every one)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import conformity
from conformity.catalog.schema import definition_validator
from conformity.harness.runner import initialize_params
from conformity.harness.vendor import load_vendor
from sandbox import plugins as sandbox_plugins
from sandbox.sessions import create_session, public_view
from sandbox.store import Store

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(conformity.__file__).parent / "schemas" / "driver.schema.json").read_text())


@pytest.mark.parametrize("pack", list(sandbox_plugins.packs()))
def test_the_initialize_request_of_every_pack_is_valid_against_the_published_schema(pack: str, tmp_path: Path) -> None:
    # the session as the sandbox's admin API gives it to the harness, for a run of the pack's wave
    view = public_view(create_session(Store(tmp_path / "sandbox.sqlite3"), "https://127.0.0.1:8443", seed=7,
                                      pack=pack))
    endpoints = {name: url for name, url in view["endpoints"].items() if name != "trace"}  # as Runner._endpoints
    vendor = load_vendor(ROOT / "examples" / "vendors" / pack / "reference" / "vendor.toml")
    params = initialize_params(pack, view, f"{pack}.some_scenario", 7, endpoints, ["-----BEGIN CERTIFICATE-----"],
                               vendor)
    assert params["fixtures"]  # the pack's driver fixtures, not an empty object
    errors = [e.message for e in definition_validator("driver", "initialize_params").iter_errors(params)]
    assert not errors, errors
    request = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    assert not [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(request)]
