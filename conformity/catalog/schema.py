"""JSON Schema validation of usine's own formats, with errors as key paths."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from conformity.errors import Problem
from conformity.paths import SCHEMAS_DIR, schema_path


def _no_network(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)


@cache
def registry() -> Registry:
    """Every usine schema by its $id; references never reach the network."""
    resources = []
    for path in sorted(SCHEMAS_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry(retrieve=_no_network).with_resources(resources)  # type: ignore[call-arg]  # referencing's Registry stub does not declare retrieve; it is its documented keyword


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A format-checking validator for one of usine's schemas (e.g. ``"wave"``)."""
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker(), registry=registry())


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


def _message(err: ValidationError) -> tuple[str, str]:
    """A readable (where, what) for one schema error."""
    path = list(err.absolute_path)
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
        deepest = best_match(err.context)
        return _message(deepest)
    if err.validator == "type":
        return key_path(path), f"wrong type: expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"
    if err.validator == "enum":
        return key_path(path), f"{err.instance!r} is not one of {', '.join(map(repr, err.validator_value))}"
    if err.validator == "const":
        return key_path(path), f"must be {err.validator_value!r}, got {err.instance!r}"
    if err.validator == "pattern":
        return key_path(path), f"{err.instance!r} does not match the expected form {err.validator_value}"
    return key_path(path), err.message


def schema_problems(name: str, data: Any, file: str) -> list[Problem]:
    """Every schema error of ``data`` against usine's schema ``name``, as Problems."""
    problems = []
    for err in sorted(validator(name).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where, what = _message(err)
        problems.append(Problem(file, where, what))
    return problems
