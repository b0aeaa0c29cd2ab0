"""The CloudEvents 1.0 envelope rules embedded in code, against the official JSON Schema and the sandbox."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments import envelope
from conformity.payments.intake import Event, Rejected, parse_event
from sandbox import events as sandbox_events
from tests.conftest import official as official_file
from tests.payments.builders import T0, event, installation

BASE = event(installation(), T0, 1)
OPTIONAL_VALUES = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.booleans(),
                            st.sampled_from(["1.0", "0.3", "2026-06-01T09:00:00Z", "application/json", "urn:x"]))
NAMES = st.sampled_from(["id", "source", "specversion", "type", "time", "subject", "datacontenttype", "dataschema",
                         "data", "data_base64", "traceparent", "Bad_Name", "x1", "partitionkey"])


@pytest.fixture(scope="module")
def official(official_schemas: Path) -> jsonschema.Draft7Validator:
    path = official_schemas / "cloudevents" / "cloudevents.json"
    official_file("the official CloudEvents JSON Schema", path if path.is_file() else None)  # fails when CI=true
    return jsonschema.Draft7Validator(json.loads(path.read_text(encoding="utf-8")))


def test_the_contract_with_the_sandbox() -> None:
    assert envelope.EVENT_TYPE == sandbox_events.EVENT_TYPE
    assert envelope.check_envelope(BASE) == (None, envelope.to_us(T0))
    assert isinstance(parse_event(json.dumps(BASE).encode()), Event)


def test_sandbox_events_pass_the_official_schema_and_ours(official: jsonschema.Draft7Validator) -> None:
    for kind, doc_type in (("document", "11502-2"), ("message", None)):
        ev = sandbox_events.data_received(installation(), source="urn:usine:sandbox:mss", kind=kind,
                                          document_type=doc_type, size=10, sha256="0" * 64, reference="r")
        assert official.is_valid(ev)
        assert envelope.envelope_problem(ev) is None


@settings(derandomize=True, max_examples=300, deadline=None)
@given(changes=st.lists(st.tuples(NAMES, st.one_of(st.just("<delete>"), OPTIONAL_VALUES)), max_size=4))
def test_what_our_rules_accept_the_official_schema_accepts(official: jsonschema.Draft7Validator,
                                                           changes: list[tuple[str, Any]]) -> None:
    ev = copy.deepcopy(BASE)
    for name, value in changes:
        if value == "<delete>":
            ev.pop(name, None)
        else:
            ev[name] = value
    if envelope.cloudevents_check(ev)[0] is None:
        assert official.is_valid(ev), ev


@pytest.mark.parametrize("text, expected", [
    ("2026-06-01T09:00:00Z", dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)),
    ("2026-06-01T11:00:00.5+02:00", dt.datetime(2026, 6, 1, 9, 0, 0, 500000, tzinfo=dt.UTC)),
    ("2026-06-01t09:00:00.123456789z", dt.datetime(2026, 6, 1, 9, 0, 0, 123456, tzinfo=dt.UTC)),
])
def test_rfc3339_times(text: str, expected: dt.datetime) -> None:
    assert envelope.parse_rfc3339_us(text) == envelope.to_us(expected)


@pytest.mark.parametrize("text", ["2026-06-01", "2026-06-01T09:00:00", "2026-06-01 09:00:00Z", "2026-13-01T00:00:00Z",
                                  "2026-06-01T24:00:00Z", "yesterday", "2026-06-01T09:00:00+0200"])
def test_not_rfc3339_times(text: str) -> None:
    assert envelope.parse_rfc3339_us(text) is None


def test_a_lone_surrogate_is_malformed_not_a_crash() -> None:
    line = json.dumps(BASE).replace('"reference": "doc-750100011-1"', '"reference": "\\ud800"')
    result = parse_event(line.encode())
    assert isinstance(result, Rejected) and result.reason == "malformed"


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    result = parse_event(b"[" * 100_000 + b"]" * 100_000)
    assert isinstance(result, Rejected) and result.reason == "malformed"
