"""JSON texts parsed once: read-only values kept by the very text they were parsed from.

Every request to a session's service reads the session (≈ 11 KB of JSON: its fixtures) from the store; parsing it
again each time was 6-8 % of a served request's CPU. :class:`ParsedTexts` keeps, per key (a session's id), the last
text read and its value: a read whose text is the same, character for character, gets the same value, whatever
process or worker wrote the text (the store's text is always read, so a change made anywhere is seen at once).

A value handed to several requests must not change under any of them: it is deep read-only (:class:`FrozenDict`,
:class:`FrozenList`, subclasses of ``dict`` and ``list`` that serialise as they do with ``json`` and orjson, and
refuse any change with a ``TypeError``). ``copy.copy`` and ``copy.deepcopy`` give plain, mutable values.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import orjson

T = TypeVar("T")

LONG_DIGITS = re.compile(rb"[0-9]{19}")
LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")


def _has_float(value: Any) -> bool:
    """Whether a parsed JSON value holds a float anywhere (an iterative walk: no recursion limit)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float):
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def parse_json(raw: bytes | str) -> Any:
    """``json.loads(raw)``, the same value, parsed by orjson (several times faster on a document-carrying body). What
    orjson refuses (NaN, a lone surrogate, nesting past its limit) ``json.loads`` decides, with its own error. orjson
    reads an integer beyond 64 bits as a float: a value with a float in it whose text has a run of 19 digits or more
    is parsed again by ``json.loads`` (that search, over a base64 document, cost 10x the parse itself: it runs only
    when there is a float)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(_text(raw))
    return _exact(raw, value, _has_float(value))


def _text(raw: bytes | str) -> str:
    """``raw`` as text for ``json.loads``: bytes read as UTF-8 only (``json.loads`` of bytes would take UTF-16 and
    UTF-32 too: JSON is UTF-8); text with NULs (UTF-16 read as UTF-8) is refused by the parser itself."""
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _exact(raw: bytes | str, value: Any, has_float: bool) -> Any:
    """``value`` (orjson's reading of ``raw``), or ``json.loads``'s when orjson may have read an integer beyond 64
    bits as a float: a float in it and a run of 19 digits in the text."""
    if has_float and (LONG_DIGITS.search(raw) if isinstance(raw, bytes) else LONG_DIGITS_TEXT.search(raw)) is not None:
        return json.loads(raw)
    return value


class DuplicateMember(ValueError):
    """A JSON object naming one member twice: RFC 8259 leaves which value is meant to each reader (orjson and Python's
    ``json`` keep the last, others the first or refuse), so a service and a check reading the same text could act on
    different values. ``name``: the member named twice."""

    def __init__(self, name: str):
        super().__init__(f"member {name!r} is named twice in one object: which value is meant is ambiguous")
        self.name = name


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for name, item in pairs:
        if name in value:
            raise DuplicateMember(name)
        value[name] = item
    return value


def _count(text: bytes | str, char: bytes | str) -> int:
    """``text.count(char)`` (a one-character ``char``), sooner on a long text holding few: ``find`` looks for one
    character by ``memchr`` (30x faster than ``count``'s loop over a base64 document), ``count`` takes the rest after
    64 found."""
    found, at = 0, text.find(char)  # type: ignore[arg-type]  # bytes with bytes, str with str
    while at >= 0:
        found += 1
        if found == 64:
            return found + text.count(char, at + 1)  # type: ignore[arg-type]
        at = text.find(char, at + 1)  # type: ignore[arg-type]
    return found


def _shape(value: Any) -> tuple[bool, int, int]:
    """Whether a parsed JSON value holds a float, how many object members it has, and how many colons its strings
    (member names included) hold: one iterative walk (no recursion limit), the strings counted together."""
    has_float, members = False, 0
    strings: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            strings.append(node)
        elif kind is dict:
            members += len(node)
            strings.extend(node)
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif kind is float:
            has_float = True
    return has_float, members, _count("\n".join(strings), ":")


def _escapes_colons(raw: bytes | str) -> int:
    """How many ``\\u003a`` (a colon written escaped) ``raw`` holds, counted only when it has a backslash at all."""
    if isinstance(raw, bytes):
        return raw.count(b"\\u003a") + raw.count(b"\\u003A") if raw.find(b"\\") >= 0 else 0
    return raw.count("\\u003a") + raw.count("\\u003A") if raw.find("\\") >= 0 else 0


def _check_members(raw: bytes | str, members: int, colons: int) -> None:
    """Every colon of a JSON text outside its strings separates a member's name from its value, so with no member
    named twice the text's colons, plus the colons its strings write escaped (``\\u003a``), are the parsed value's
    members plus the colons of its strings. A member named twice is dropped from the value, so the counts differ: only
    then (or when a ``\\u003a`` was something else, an escaped backslash before ``u003a``) is the text parsed again,
    by ``json.loads`` with a hook that refuses the name (:class:`DuplicateMember`)."""
    sent = _count(raw, b":" if isinstance(raw, bytes) else ":") + _escapes_colons(raw)
    if sent != members + colons:
        json.loads(_text(raw), object_pairs_hook=_unique_pairs)


def require_unique_members(raw: bytes | str, value: Any) -> None:
    """:class:`DuplicateMember` when the JSON text ``raw`` (parsed as ``value`` by a parser that keeps the last of two
    members of one name: orjson, ``json.loads``) names a member twice in one object; one walk of ``value``, no second
    parse unless the counts of :func:`_check_members` differ."""
    _, members, colons = _shape(value)
    _check_members(raw, members, colons)


def parse_body(raw: bytes | str) -> Any:
    """:func:`parse_json` for a body a client sent, refusing an object that names a member twice
    (:class:`DuplicateMember`: :func:`require_unique_members`), which orjson and ``json.loads`` read last-one-wins;
    one orjson parse and one walk, as :func:`parse_json`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(_text(raw), object_pairs_hook=_unique_pairs)
    has_float, members, colons = _shape(value)
    _check_members(raw, members, colons)
    return _exact(raw, value, has_float)


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is read-only: it is shared by several requests (copy it to change it)")


class FrozenDict(dict[str, Any]):
    """A JSON object no one may change (:func:`derived` keeps what is computed from it beside it)."""

    __slots__ = ("_derived",)
    _derived: dict[Callable[[Any], Any], Any]
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


class FrozenList(list[Any]):
    """A JSON array no one may change."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)


def derived(value: Any, compute: Callable[[Any], T]) -> T:
    """``compute(value)``, computed once for a :class:`FrozenDict` and kept with it (every request gets the same
    object while its text is unchanged: :class:`ParsedTexts`), so gone with it; computed at each call for any other
    value. ``compute`` is a pure function of ``value``, and a module's (it is the key the result is kept under: a new
    lambda at each call would keep a new result each time); what it returns is shared by those requests: never
    changed. (Two threads asking at once may both compute it: the same result, one kept.)"""
    if type(value) is not FrozenDict:
        return compute(value)
    try:
        kept = value._derived
    except AttributeError:
        kept = {}
        object.__setattr__(value, "_derived", kept)
    try:
        result: T = kept[compute]
    except KeyError:
        result = kept[compute] = compute(value)
    return result


def freeze(value: Any) -> Any:
    """``value`` (parsed JSON) with every object and array read-only, all the way down."""
    if type(value) is dict:
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if type(value) is list:
        return FrozenList(freeze(item) for item in value)
    return value


class ParsedTexts:
    """The read-only values of the last JSON text read under each key, at most ``size`` keys (the oldest go), each
    parsed by ``parse`` (the reader its writer calls for: :func:`parse_json` unless told)."""

    def __init__(self, size: int = 256, parse: Callable[[str], Any] = parse_json):
        self._size, self._parse = size, parse
        self._kept: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()  # PostgreSQL's store reads from several threads

    def value(self, key: str, text: str) -> Any:
        """``text`` parsed and read-only: the same value as the last read of ``key`` if the text is the same."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] == text:
            return kept[1]
        value = freeze(self._parse(text))
        with self._lock:
            self._kept.pop(key, None)
            if len(self._kept) >= self._size:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = (text, value)
        return value
