"""One form for vendor and software ids (conformity.naming.ID_PATTERN): the manifests' schemas write the same."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.catalog.schema import schema_problems
from conformity.naming import ID_PATTERN, id_problem, owned_software_id, valid_id
from conformity.paths import schema_path

#: the sandbox's harness-token pattern, looser: a dot anywhere after the first character
SANDBOX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
IDS = st.builds(lambda first, parts: first + "".join("." + p for p in parts),
                st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=4).flatmap(
                    lambda head: PART.map(lambda rest: head + rest)),
                st.lists(PART, max_size=3))


@settings(derandomize=True, max_examples=300)
@given(IDS)
def test_ids_with_dots_between_parts_are_ids_and_the_sandbox_takes_them(value: str) -> None:
    assert valid_id(value) == (len(value) <= 64)
    if valid_id(value):
        assert SANDBOX_PATTERN.match(value)  # stricter than the sandbox: never an id it refuses


@settings(derandomize=True, max_examples=300)
@given(IDS, st.sampled_from(["{}.", ".{}", "{}..x", "x..{}"]))
def test_a_stray_dot_is_refused_and_said(value: str, shape: str) -> None:
    bad = shape.format(value)
    problem = id_problem(bad)
    assert problem is not None and "dot" in problem and not valid_id(bad)


def test_a_trailing_dot_no_longer_owns_a_double_dot_software_id() -> None:
    assert owned_software_id("acme..ehr", "acme.")  # the namespace rule alone would take it
    assert not valid_id("acme.") and not valid_id("acme..ehr")


@pytest.mark.parametrize("value,words", [("a", "2 to 64"), ("A-corp", "lower-case"), ("x" * 65, "2 to 64"),
                                         ("-acme", "starting with")])
def test_other_bad_ids_say_what_is_wrong(value: str, words: str) -> None:
    assert words in (id_problem(value) or "")


@pytest.mark.parametrize("schema,paths", [("vendor", (("properties", "vendor_id"), ("properties", "software_id"))),
                                          ("bundle-manifest", (("properties", "vendor", "properties", "id"),
                                                               ("properties", "software", "properties", "id")))])
def test_the_schemas_that_take_an_id_write_the_same_pattern(schema: str, paths: tuple[tuple[str, ...], ...]) -> None:
    doc = json.loads(schema_path(schema).read_text(encoding="utf-8"))
    for path in paths:
        node = doc
        for key in path:
            node = node[key]
        assert node["pattern"] == ID_PATTERN, (schema, path)


def test_the_bundle_manifest_schema_refuses_a_trailing_dot() -> None:
    """The agency reads the vendor's id from the bundle's manifest: ``acme.`` passed its pattern."""
    problems = schema_problems("bundle-manifest", {"vendor": {"id": "acme.", "name": "Acme"}}, "manifest.json")
    assert any(p.where == "vendor.id" for p in problems), problems
