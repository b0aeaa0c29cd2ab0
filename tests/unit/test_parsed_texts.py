"""``sandbox.parsed``: a session's text parsed once, its value read-only all the way down, and nothing else changed:
the same JSON from ``json`` and orjson, the same equality, mutable copies."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from sandbox.parsed import FrozenDict, FrozenList, ParsedTexts, derived, freeze

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=20)


@seed(20261203)
@settings(max_examples=200, deadline=None)
@given(JSON)
def test_a_frozen_value_equals_and_serialises_as_the_value(value: Any) -> None:
    frozen = freeze(value)
    derived(frozen, repr)  # what is kept beside a value never shows in it
    assert frozen == value
    assert orjson.dumps(frozen) == orjson.dumps(value)
    assert json.dumps(frozen) == json.dumps(value)
    thawed = copy.deepcopy(frozen)
    assert thawed == value and not isinstance(thawed, (FrozenDict, FrozenList))
    assert pickle.loads(pickle.dumps(frozen)) == value


@pytest.mark.parametrize("change", [
    lambda d: d.__setitem__("k", 1), lambda d: d.__delitem__("a"), lambda d: d.update(k=1), lambda d: d.pop("a"),
    lambda d: d.popitem(), lambda d: d.setdefault("k", 1), lambda d: d.clear(), lambda d: d.__ior__({"k": 1}),
    lambda d: d["a"].append(1), lambda d: d["a"].extend([1]), lambda d: d["a"].insert(0, 1), lambda d: d["a"].pop(),
    lambda d: d["a"].remove(1), lambda d: d["a"].sort(), lambda d: d["a"].reverse(), lambda d: d["a"].clear(),
    lambda d: d["a"].__setitem__(0, 2), lambda d: d["a"].__delitem__(0), lambda d: d["a"].__iadd__([1]),
    lambda d: d["a"].__imul__(2), lambda d: d["a"][1].__setitem__("x", 2),
], ids=lambda change: "")
def test_no_change_reaches_a_frozen_value(change: Any) -> None:
    frozen = freeze({"a": [1, {"x": 1}]})
    with pytest.raises(TypeError, match="read-only"):
        change(frozen)
    assert frozen == {"a": [1, {"x": 1}]}


def test_copies_and_operators_give_plain_values_to_change() -> None:
    frozen = freeze({"a": [1, {"x": 1}]})
    for shallow in (copy.copy(frozen), dict(frozen), frozen | {"b": 2}, {**frozen}):
        assert type(shallow) is dict
        shallow["b"] = 3
    assert type(copy.copy(frozen["a"])) is list and type(frozen["a"] + [2]) is list
    deep = copy.deepcopy(frozen)
    deep["a"][1]["x"] = 2
    assert frozen["a"][1]["x"] == 1


def test_the_same_text_gives_the_same_value_and_another_text_a_new_one() -> None:
    texts = ParsedTexts(size=2)
    a = texts.value("ses_a", '{"n": [1]}')
    assert texts.value("ses_a", '{"n": [1]}') is a and isinstance(a, FrozenDict)
    b = texts.value("ses_a", '{"n": [2]}')
    assert b == {"n": [2]} and a == {"n": [1]}
    texts.value("ses_b", '{"n": 3}')
    texts.value("ses_c", '{"n": 4}')  # at most two keys: ses_a, the oldest, goes
    assert texts.value("ses_a", '{"n": [2]}') is not b
    with pytest.raises(ValueError, match="property name"):  # json.loads's error, as for any store text
        texts.value("ses_d", "{")


def test_what_is_derived_from_a_frozen_value_is_computed_once_and_goes_with_it() -> None:
    calls: list[Any] = []

    def size(value: Any) -> int:
        calls.append(value)
        return len(value)

    texts = ParsedTexts()
    first = texts.value("s", '{"a": [1], "b": 2}')
    assert derived(first, size) == 2
    assert derived(texts.value("s", '{"a": [1], "b": 2}'), size) == 2  # the same text: the same value, kept
    assert len(calls) == 1
    assert derived(first, sorted) == ["a", "b"] and derived(first, size) == 2 and len(calls) == 1  # one per function
    second = texts.value("s", '{"a": [1]}')  # the text changed: a new value, computed for it
    assert derived(second, size) == 1 and len(calls) == 2
    plain = {"a": 1}
    assert derived(plain, size) == 1 and derived(plain, size) == 1 and len(calls) == 4  # any other value: each time
    plain["b"] = 2
    assert derived(plain, size) == 2
    assert first == {"a": [1], "b": 2} and json.dumps(first) == '{"a": [1], "b": 2}'
    assert orjson.dumps(first) == b'{"a":[1],"b":2}' and pickle.loads(pickle.dumps(first)) == {"a": [1], "b": 2}
    assert copy.copy(first) == {"a": [1], "b": 2} and type(copy.copy(first)) is dict
