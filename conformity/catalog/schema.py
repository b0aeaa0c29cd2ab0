"""JSON Schema validation of usine's own formats, with errors as key paths.

jsonschema (Python) is the reference: its verdict and its messages. A document is first given to the same schema
compiled by jsonschema-rs, whose formats are jsonschema's own checkers: what it accepts, jsonschema accepts
(``tests/unit/test_schema_engines.py`` holds every pattern of usine's schemas and mutated documents to that), so
only a document it refuses is walked again, by jsonschema, for the reasons. A catalog's load, every command's
first step, spent most of its time in jsonschema (0.28 s of 0.68 for the files, 0.23 for the actions' schemas).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import reprlib
from collections.abc import Callable, Iterator
from functools import cache, partial
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from conformity.errors import Problem
from conformity.paths import SCHEMAS_DIR


def _no_network(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs exception: its ref field is not in the stub


@cache
def _schemas() -> dict[str, Any]:
    """Every usine schema by its name (``schema_path``'s), read once for both engines."""
    suffix = ".schema.json"
    return {p.name[:-len(suffix)]: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(SCHEMAS_DIR.glob("*" + suffix))}


@cache
def registry() -> Registry:
    """Every usine schema by its $id; references never reach the network."""
    resources = [(schema["$id"], Resource.from_contents(schema)) for schema in _schemas().values()]
    return Registry(retrieve=_no_network).with_resources(resources)  # type: ignore[call-arg]  # referencing's Registry stub does not declare retrieve; it is its documented keyword


@cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled by Python's ``re`` with ``$`` read as ECMA 262 (JSON Schema's dialect) reads it: the end of
    the text only. Python's ``$`` also matches before a final line break, so ``^[A-Z]+$`` took ``"ABC\\n"``, which
    jsonschema-rs refuses: a document the fast engine refused was then accepted by the reference."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":  # a class: its ``$`` is a member; a leading ] (after an optional ^) too, in Python's re
            in_class = True
            opening = re.match(r"\[\^?\]?", pattern[i:])
            assert opening is not None
            out.append(opening.group())
            i += len(opening.group())
            continue
        elif c == "$":
            c = "\\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """jsonschema's ``pattern`` keyword with ECMA 262's ``$`` (:func:`ecma_pattern`)."""
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 as jsonschema implements it, its ``pattern`` keyword (``propertyNames`` patterns too) reading ``$``
#: as JSON Schema's ECMA 262 does
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, validators={"pattern": _pattern})


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A format-checking validator for one of usine's schemas (e.g. ``"wave"``)."""
    schema = _schemas()[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    return Validator(schema, format_checker=jsonschema.FormatChecker(), registry=registry())


@cache
def definition_validator(name: str, definition: str) -> jsonschema.Draft202012Validator:
    """A validator for one definition (``$defs``) of usine's schema ``name`` (e.g. the driver protocol's
    ``initialize_result``)."""
    ref = {"$ref": f"{_schemas()[name]['$id']}#/$defs/{definition}"}
    return Validator(ref, format_checker=jsonschema.FormatChecker(), registry=registry())


@cache
def fast_validator(name: str) -> Any:
    """The schema of :func:`validator` compiled by jsonschema-rs, every format jsonschema checks checked by
    jsonschema's own function (the engines' format checks differ: jsonschema's are the reference)."""
    checker = jsonschema.FormatChecker()
    formats: dict[str, Callable[..., bool]] = {str(f): partial(_conforms, checker, f) for f in checker.checkers}
    resources = [(schema["$id"], schema) for schema in _schemas().values()]
    return jsonschema_rs.validator_for(_schemas()[name], formats=formats, validate_formats=True,
                                       registry=jsonschema_rs.Registry(resources))


def _conforms(checker: jsonschema.FormatChecker, format_name: str, value: Any) -> bool:
    return bool(checker.conforms(value, format_name))


def fast_valid(name: str, data: Any) -> bool:
    """jsonschema-rs accepts ``data`` (then jsonschema does too); False also when it cannot read it (a value JSON
    has not, a number too large): jsonschema decides."""
    try:
        return bool(fast_validator(name).is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False


def plain(value: Any) -> Any:
    """TOML values as JSON values: dates and datetimes become ISO strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def key_path(parts: Any) -> str:
    """``['requirements', 3, 'level']`` → ``requirements[3].level``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


#: the pattern of a text that may not be blank (only spaces): one character that is not white space, as Python and
#: jsonschema-rs both read it (Python's ``\\s`` also takes the separators U+001C-U+001F, Rust's does not)
NOT_BLANK = "[^\\s\\x1c-\\x1f]"


def _matching_branches(err: ValidationError) -> list[ValidationError]:
    """The errors of the ``oneOf``/``anyOf`` branches the instance chose: a branch whose ``const``/``enum`` on one of
    the instance's own keys failed (``method = "automated"`` against the document branch) is another kind of thing,
    and its errors ("unknown key 'checks'") would not say what is wrong with this one."""
    context = list(err.context or ())
    depth = len(err.absolute_path) + 1
    mismatched = {e.relative_schema_path[0] for e in context if e.validator in ("const", "enum")
                  and len(e.absolute_path) == depth}
    chosen = [e for e in context if e.relative_schema_path[0] not in mismatched] or context
    # a branch for another type ({"type": "null"} beside {"type": "string", "format": "date-time"}) says nothing of
    # this value: the branches of its type say what is wrong ("not a date-time", not "expected null")
    other_type = {e.relative_schema_path[0] for e in chosen if e.validator == "type" and not e.relative_path}
    return [e for e in chosen if e.relative_schema_path[0] not in other_type] or chosen


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxlevel = 80, 80, 6, 6, 3

#: the size keywords, what they count and in which unit
_SIZES = {"maxProperties": ("at most", "key"), "minProperties": ("at least", "key"), "maxItems": ("at most", "item"),
          "minItems": ("at least", "item"), "maxLength": ("at most", "character"),
          "minLength": ("at least", "character")}


def shown(value: Any) -> str:
    """``repr(value)`` bounded (a long text, a large table or list abridged with ``...``): an error names the value,
    never prints a whole 20 KB table."""
    return _SHOWN.repr(value)


def _message(err: ValidationError) -> tuple[str, str]:
    """A readable (where, what) for one schema error; values shown bounded (:func:`shown`)."""
    path = list(err.absolute_path)
    if err.validator in _SIZES:
        bound, unit = _SIZES[str(err.validator)]
        size = len(err.instance)
        return key_path(path), (f"has {size} {unit}{'s' if size != 1 else ''}, {bound} {err.validator_value} "
                                f"allowed: {shown(err.instance)}")
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        if len(extra) == 1:
            allowed = ", ".join(sorted(err.schema.get("properties", {})))
            return key_path(path + extra), f"unknown key '{extra[0]}' (allowed here: {allowed})"
        return key_path(path), f"unknown keys {', '.join(repr(e) for e in extra)}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return key_path(path + [missing]), "required key is missing"
    if err.validator in ("oneOf", "anyOf") and err.context:
        branches = _matching_branches(err)
        types = [e.validator_value for e in branches if e.validator == "type" and not e.relative_path]
        if len(types) == len(branches) > 1:  # a value of none of the branches' types: name them all
            return key_path(path), (f"wrong type: expected {' or '.join(dict.fromkeys(map(str, types)))}, got "
                                    f"{type(err.instance).__name__} {shown(err.instance)}")
        return _message(best_match(branches))
    if err.validator == "type":
        return key_path(path), (f"wrong type: expected {err.validator_value}, got {type(err.instance).__name__} "
                                f"{shown(err.instance)}")
    if err.validator == "enum":
        return key_path(path), f"{shown(err.instance)} is not one of {', '.join(map(repr, err.validator_value))}"
    if err.validator == "const":
        return key_path(path), f"must be {err.validator_value!r}, got {shown(err.instance)}"
    if err.validator == "format" and err.validator_value == "date-time":
        return key_path(path), (f"{shown(err.instance)} is not in the date-time format: an RFC 3339 date-time is expected, "
                                "e.g. 2026-05-01T09:00:00Z or 2026-05-01T11:00:00.250+02:00")
    if err.validator == "pattern" and err.validator_value == NOT_BLANK:
        return key_path(path), "is blank: a text is expected here"
    if err.validator == "pattern":
        return key_path(path), f"{shown(err.instance)} does not match the expected form {err.validator_value}"
    return key_path(path), err.message.replace(repr(err.instance), shown(err.instance))


def error_text(err: ValidationError) -> str:
    """One schema error in words, where it is first: ``traits.birth_name: required key is missing``."""
    where, what = _message(err)
    return f"{where}: {what}"


def schema_errors(validator: Any, data: Any, most: int = 10) -> list[str]:
    """The first ``most`` schema errors of ``data`` (:func:`error_text`, in order), by a jsonschema ``validator``."""
    return sorted(error_text(e) for e in validator.iter_errors(data))[:most]


def schema_problems(name: str, data: Any, file: str) -> list[Problem]:
    """Every schema error of ``data`` against usine's schema ``name``, as Problems."""
    return [] if fast_valid(name, data) else reference_problems(name, data, file)


def reference_problems(name: str, data: Any, file: str) -> list[Problem]:
    """:func:`schema_problems` as jsonschema alone finds them (for a caller that asked :func:`fast_valid` already)."""
    problems = []
    for err in sorted(validator(name).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where, what = _message(err)
        problems.append(Problem(file, where, what))
    return problems


#: the formats the 2020-12 meta-schema asks for, which jsonschema-rs does not check as jsonschema does: ``regex``
#: (Python's ``re`` against ECMA 262), checked here by compiling each pattern; the URI ones, which jsonschema checks
#: only when an optional package is installed (then every schema takes jsonschema's path)
_META_FORMATS = frozenset({"regex", "uri", "uri-reference"})
_META_FORMATS_CHECKED_HERE = frozenset({"regex"})


def meta_problem(schema: Any) -> jsonschema.SchemaError | None:
    """Why ``schema`` is not a valid JSON Schema (2020-12), as jsonschema says it, or None."""
    if _meta_valid_fast(schema):
        return None
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc
    return None


def _meta_valid_fast(schema: Any) -> bool:
    checked = _META_FORMATS & set(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
    if not checked <= _META_FORMATS_CHECKED_HERE:
        return False
    try:
        if not jsonschema_rs.meta.is_valid(schema):
            return False
    except (ValueError, TypeError, OverflowError, jsonschema_rs.ValidationError):
        return False
    try:  # every string that may be a pattern (more than the meta-schema's places: a miss only costs the slow path)
        for pattern in _patterns(schema):
            re.compile(pattern)
    except (re.error, RecursionError):
        return False
    return True


def _patterns(value: Any) -> Iterator[str]:
    """Every ``pattern`` string and ``patternProperties`` key anywhere in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "pattern" and isinstance(item, str):
                yield item
            elif key == "patternProperties" and isinstance(item, dict):
                yield from item
            yield from _patterns(item)
    elif isinstance(value, list):
        for item in value:
            yield from _patterns(item)
