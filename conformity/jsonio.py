"""Reading JSON that someone else wrote: strict, bounded in size and depth, errors that say where.

The one place usine parses untrusted JSON (files, bundle members, signed payloads). Strict means
UTF-8 text, no lone surrogate in a string (``"\\ud800"``: not Unicode text, RFC 7493 §2.1; written back as UTF-8 it
raised far from here — a driver's answer holding one ended the harness's run), no ``NaN``/``Infinity`` (nor a number
too large for a double, which Python's reader turns into an infinity: ``1e400``), no name twice
in an object (RFC 8259 leaves its meaning to the
parser: one keeps the first value, another the last, so two readers of the same file could disagree), and
objects nested at most :data:`MAX_DEPTH` deep: a document nested 100,000 deep is refused with a clear
error, never a ``RecursionError`` traceback.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from conformity.errors import InputError
from conformity.files import read_bounded

MAX_DEPTH = 128
MAX_FILE_BYTES = 256 * 1024 * 1024


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict (``object_pairs_hook``); ValueError naming a member that appears twice."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        raise ValueError(f"the name {twice!r} appears twice in one object")
    return obj


def _finite(token: str) -> float:
    """A number with a fraction or an exponent as a float; ValueError when it overflows to an infinity."""
    value = float(token)
    if value in (math.inf, -math.inf):
        raise ValueError(f"the number {token[:40]}{'…' if len(token) > 40 else ''} is beyond the range of a double")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=unique_names)
#: an escaped surrogate code unit: where a lone one may hide (a pair decodes to one character, a lone one stays)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """Whether a string in ``value`` holds a surrogate code unit that is not half of a pair (not encodable)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def members(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: for reading members of a document not yet checked."""
    return value if isinstance(value, dict) else {}


def depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value`` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads(data: bytes | str, *, source: str = "JSON", max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON; InputError naming ``source``, the line and column, and what is wrong."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", file=source) from exc
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=source,
                         where=f"line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError as exc:
        raise InputError(f"JSON nested deeper than {max_depth} levels; refused", file=source) from exc
    except ValueError as exc:
        raise InputError(f"not acceptable JSON: {exc}", file=source) from exc
    if depth(value) > max_depth:
        raise InputError(f"JSON nested deeper than {max_depth} levels; refused", file=source)
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value):
        raise InputError("a string holds a lone surrogate (an escape such as \\ud800 that is not half of a pair): "
                         "not Unicode text (RFC 7493 §2.1)", file=source)
    return value


def load_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Read and parse a JSON file (bounded size and depth), errors naming the file."""
    return loads(read_bounded(path, max_bytes), source=str(path), max_depth=max_depth)
