"""jsonschema-rs decides first, jsonschema (the reference) explains: what the fast engine accepts, jsonschema accepts.

``conformity.catalog.schema`` gives a document to usine's schema compiled by jsonschema-rs (its formats checked by
jsonschema's own functions) and walks it with jsonschema only when jsonschema-rs refuses it; an action's schema is
checked against the 2020-12 meta-schema the same way (its patterns compiled by Python's ``re``). The two engines
differ where their regular expressions do (ECMA 262 against Python's ``re``): these tests hold every pattern of
usine's schemas, mutated documents of each kind the project ships and mutated action schemas to "jsonschema-rs
accepts ⇒ jsonschema accepts", and the shipped documents to the fast path (else a load costs what it did).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.catalog import load_catalog
from conformity.catalog.schema import (
    _patterns,
    _schemas,
    fast_valid,
    meta_problem,
    plain,
    schema_problems,
    validator,
)
from tests.payments.builders import event, infrastructure_keys, installation, signed_label

ROOT = Path(__file__).resolve().parents[2]
#: characters where regular expression engines disagree: whitespace Python's ``str.isspace`` has and ECMA's ``\s``
#: has not (and the reverse), line ends ``$`` treats apart, digits and letters beyond ASCII
EDGE = ("\x1c", "\x1d", "\x1e", "\x1f", "\ufeff", "\x85", "\xa0", "\u2028", "\u2029", "\u3000", "\n", "\r", "\t",
        "\v", "\f", " ", "\u0663", "\uff11", "\u00e9", "\u0130", "\u212a", "\U0001f600", "\x00", "\x7f")


def _distinct_patterns() -> list[tuple[str, str]]:
    """(the first schema holding it, pattern) of every distinct pattern of usine's schemas."""
    first: dict[str, str] = {}
    for name, schema in _schemas().items():
        for pattern in _patterns(schema):
            first.setdefault(pattern, f"{name}.schema.json")
    return sorted((name, pattern) for pattern, name in first.items())


PATTERNS = _distinct_patterns()


def _catalog_documents() -> list[tuple[str, str, dict[str, Any]]]:
    """(schema, file, document) of every pack, referential and wave file and every example vendor manifest."""
    out = []
    for path in sorted((ROOT / "referentials").glob("*/pack.toml")):
        out.append(("pack", path))
    for path in sorted((ROOT / "referentials").glob("*/*/*.toml")):
        out.append(("referential", path))
    for path in sorted((ROOT / "waves").glob("*.toml")):
        out.append(("wave", path))
    for path in sorted((ROOT / "examples" / "vendors").glob("**/vendor.toml")):
        out.append(("vendor", path))
    return [(name, str(path.relative_to(ROOT)), plain(tomllib.loads(path.read_text(encoding="utf-8"))))
            for name, path in out]


def _other_documents() -> list[tuple[str, str, dict[str, Any]]]:
    """A signed label, a data-received event's data and an infrastructure keys document, as the tests make them."""
    return [("label", "signed_label().doc", signed_label().doc),
            ("data-received", "event().data", event(installation(), dt.datetime(2026, 4, 1, tzinfo=dt.UTC), 1)["data"]),
            ("infrastructure-keys", "infrastructure_keys()", infrastructure_keys())]


DOCUMENTS = _catalog_documents() + _other_documents()


def _python_valid(name: str, doc: Any) -> bool:
    return validator(name).is_valid(doc)


def test_the_corpus_holds_every_kind_of_catalog_file() -> None:
    kinds = {name for name, _, _ in DOCUMENTS}
    assert {"pack", "referential", "wave", "vendor", "label", "data-received", "infrastructure-keys"} <= kinds
    assert len(DOCUMENTS) > 40 and len(PATTERNS) > 20


@pytest.mark.parametrize(("name", "file", "doc"), DOCUMENTS, ids=[f for _, f, _ in DOCUMENTS])
def test_a_shipped_document_takes_the_fast_path(name: str, file: str, doc: dict[str, Any]) -> None:
    assert fast_valid(name, doc), f"{file}: jsonschema-rs refuses it, so every load walks it twice"
    assert _python_valid(name, doc)
    assert schema_problems(name, doc, file) == []


@pytest.mark.parametrize(("schema_name", "pattern"), PATTERNS, ids=[f"{n}:{p}" for n, p in PATTERNS])
def test_a_pattern_jsonschema_rs_matches_python_matches(schema_name: str, pattern: str) -> None:
    """Every ``pattern`` of usine's schemas: strings matching it with an edge character put at each place, or any
    text."""
    fast = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})

    @settings(max_examples=40, derandomize=True, deadline=None)
    @given(base=st.one_of(st.from_regex(pattern, fullmatch=False), st.text(max_size=8)), edge=st.sampled_from(EDGE))
    def holds(base: str, edge: str) -> None:
        for at in sorted({0, len(base) // 2, len(base)}):
            text = base[:at] + edge + base[at:]
            assert not fast.is_valid(text) or re.search(pattern, text), (schema_name, pattern, text)
        assert not fast.is_valid(base) or re.search(pattern, base), (schema_name, pattern, base)

    holds()


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


def _edge_text() -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(EDGE), st.characters(), st.sampled_from("AZ09-_.:Wv2026T")),
                    max_size=12).map("".join)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
              _edge_text()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_edge_text(), inner, max_size=3)),
    max_leaves=6)


def _mutate(data: st.DataObject, doc: Any) -> Any:
    """``doc`` with one node replaced (by any JSON value, or its own string with edge characters put in), removed
    or given a sibling."""
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    key, old = path[-1], parent[path[-1]]
    how = data.draw(st.sampled_from(("replace", "edge", "remove", "add")))
    if how == "edge" and isinstance(old, str):
        at = data.draw(st.integers(0, len(old)))
        parent[key] = old[:at] + data.draw(st.sampled_from(EDGE)) + old[at + data.draw(st.integers(0, 1)):]
    elif how == "remove" and isinstance(parent, dict):
        del parent[key]
    elif how == "add" and isinstance(parent, dict):
        parent[data.draw(_edge_text())] = data.draw(JSON_VALUES)
    else:
        parent[key] = data.draw(JSON_VALUES)
    return doc


@settings(max_examples=400, derandomize=True, deadline=None)
@given(data=st.data())
def test_a_mutated_document_jsonschema_rs_accepts_jsonschema_accepts(data: st.DataObject) -> None:
    name, file, doc = data.draw(st.sampled_from(DOCUMENTS))
    mutated = _mutate(data, doc)
    if fast_valid(name, mutated):
        assert _python_valid(name, mutated), (file, json.dumps(mutated, ensure_ascii=True)[:400])
        assert schema_problems(name, mutated, file) == []
    else:  # refused by the fast engine: jsonschema's verdict and reasons, as before
        expected = sorted(validator(name).iter_errors(mutated), key=lambda e: list(map(str, e.absolute_path)))
        assert len(schema_problems(name, mutated, file)) == len(expected)


def test_what_jsonschema_rs_cannot_read_goes_to_jsonschema() -> None:
    doc = copy.deepcopy(signed_label().doc)
    for bad in ((1, 2), {1, 2}, 2**80, float("nan"), object()):
        doc["wave"] = bad
        assert fast_valid("label", doc) is False
        assert [p.where for p in schema_problems("label", doc, "label")] == ["wave"]


ACTION_SCHEMAS = sorted({json.dumps(getattr(a, part), sort_keys=True) for ref in load_catalog().referentials.values()
                         for a in ref.actions for part in ("input", "output")})


def _python_meta_valid(schema: Any) -> bool:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return False
    return True


def test_every_action_schema_of_the_catalog_takes_the_fast_path() -> None:
    from conformity.catalog.schema import _meta_valid_fast

    assert len(ACTION_SCHEMAS) > 30
    assert all(_meta_valid_fast(json.loads(s)) for s in ACTION_SCHEMAS)


@pytest.mark.parametrize(("schema", "where", "says"), [
    ({"type": "string", "pattern": "\\p{L}"}, "pattern", "is not a 'regex'"),  # ECMA 262 has \p, Python's re has not
    ({"type": "object", "patternProperties": {"(?<n>x)": {}}}, "patternProperties", "is not a 'regex'"),
    ({"type": "strin"}, "type", "is not valid under any of the given schemas"),
    ({"properties": {"a": {"minLength": -1}}}, "properties.a.minLength", "is less than the minimum of 0"),
])
def test_a_bad_action_schema_is_refused_with_jsonschemas_reason(schema: dict[str, Any], where: str, says: str) -> None:
    exc = meta_problem(schema)
    assert exc is not None and says in exc.message
    assert ".".join(map(str, exc.absolute_path)).startswith(where)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=st.data())
def test_a_mutated_action_schema_is_judged_as_jsonschema_judges_it(data: st.DataObject) -> None:
    schema = json.loads(data.draw(st.sampled_from(ACTION_SCHEMAS)))
    mutated = _mutate(data, schema) if _paths(schema)[1:] else schema
    if data.draw(st.booleans()):  # a pattern somewhere, Python's or not
        mutated = {"allOf": [mutated, {"pattern": data.draw(st.sampled_from(
            ("^[a-z]+$", "\\p{L}", "(?<n>x)", "(", "[", "\\d{2}", "(?i)x", "a{2,1}")))}]}
    assert (meta_problem(mutated) is None) == _python_meta_valid(mutated), json.dumps(mutated)[:400]


def test_the_meta_schema_asks_for_no_format_the_fast_path_does_not_know() -> None:
    from jsonschema_specifications import REGISTRY

    from conformity.catalog.schema import _META_FORMATS

    asked: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            asked.update(v for k, v in value.items() if k == "format" and isinstance(v, str))
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for uri in REGISTRY:
        if "2020-12" in uri:
            walk(REGISTRY[uri].contents)
    assert asked == _META_FORMATS


def test_with_a_uri_format_checker_installed_every_schema_takes_jsonschemas_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from conformity.catalog.schema import _meta_valid_fast

    schema = json.loads(ACTION_SCHEMAS[0])
    assert _meta_valid_fast(schema)
    checkers = dict(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
    checkers["uri-reference"] = (lambda value: " " not in value, ())
    monkeypatch.setattr(jsonschema.Draft202012Validator.FORMAT_CHECKER, "checkers", checkers)
    assert not _meta_valid_fast(schema)
    assert meta_problem(schema) is None


def test_an_error_names_a_large_value_abridged_with_its_size() -> None:
    """QA (first hour): a vendor.toml with 999 evidence entries was refused with the whole 23 KB table printed
    ("{…} has too many properties"); a size error now says the count and the bound, and any value an error shows is
    abridged."""
    from conformity.catalog.schema import reference_problems

    doc = tomllib.loads((Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health" / "reference"
                         / "vendor.toml").read_text())
    doc["evidence"] = {f"DOC-{i:03d}": f"docs/{'x' * 50}-{i}.pdf" for i in range(999)}
    (problem,) = [p for p in reference_problems("vendor", doc, "vendor.toml") if p.where == "evidence"]
    assert problem.message.startswith("has 999 keys, at most 64 allowed: {") and len(problem.message) < 600
    doc["evidence"] = {"DOC-001": "docs/a.pdf"}
    doc["software"] = "x" * 5000
    (problem,) = reference_problems("vendor", doc, "vendor.toml")
    assert "5000" not in problem.message or len(problem.message) < 400
    assert len(problem.message) < 400 and "..." in problem.message
