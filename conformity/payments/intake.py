"""Events intake: JSON-lines files read line by line (bounded), each line parsed and validated into an Event.

Validation order: JSON object on one line (``malformed``), CloudEvents 1.0 envelope and the usine
profile (``wrong-envelope``), then ``data`` against ``conformity/schemas/data-received.schema.json``
(``invalid-data``). The data schema is checked with jsonschema-rs (fast) and explained with jsonschema
(readable messages) only when it fails: both read the same schema file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from conformity.catalog.schema import fast_valid, reference_problems
from conformity.jsonio import unique_names
from conformity.payments import reasons
from conformity.payments.envelope import check_envelope

MAX_LINE_BYTES = 1 << 20
DATA_SCHEMA_NAME = "data-received"


@dataclass(frozen=True, slots=True)
class Event:
    """A data-received event that passed intake: its identity, time, data, content digest and raw line."""

    source: str
    id: str
    time_us: int
    data: dict[str, Any]
    digest: bytes
    raw: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line refused at intake: the reason code and what is wrong; the event's identity when known."""

    reason: str
    detail: str
    source: str = ""
    id: str = ""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: a member named twice is refused (I-JSON, RFC 7493): parsers disagree on which one counts (Python's keeps the last,
#: others the first or stop), so such a line would pay what an auditor re-reading it may not see
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=unique_names)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_lines(path: Path, max_bytes: int = MAX_LINE_BYTES, *,
               wrap: Callable[[IO[bytes]], IO[bytes]] | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without its end) for every non-blank line; None for a line longer than ``max_bytes``.

    ``wrap`` sees every byte read (e.g. to hash what is read).
    """
    with open(path, "rb") as raw:
        fh = wrap(raw) if wrap is not None else raw
        number = 0
        while True:
            chunk = fh.readline(max_bytes + 1)
            if not chunk:
                return
            number += 1
            if len(chunk) > max_bytes and not chunk.endswith(b"\n"):
                while (rest := fh.readline(1 << 16)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
                continue
            if chunk.endswith(b"\n"):
                chunk = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1]
            if chunk.strip():
                yield number, chunk


def data_problem(data: dict[str, Any]) -> str | None:
    """The first way ``data`` breaks the data-received schema, or None (refused when either engine refuses it)."""
    if fast_valid(DATA_SCHEMA_NAME, data):
        return None
    problems = reference_problems(DATA_SCHEMA_NAME, data, "data")
    if not problems:
        return "does not match the data-received schema"
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first.where}: {first.message}{more}"


def parse_event(raw: bytes | None, max_bytes: int = MAX_LINE_BYTES) -> Event | Rejected:
    """One line of an events file as an Event, or why it is refused."""
    if raw is None:
        return Rejected(reasons.MALFORMED, f"line longer than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(reasons.MALFORMED, f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return Rejected(reasons.MALFORMED, f"not valid JSON: {exc.msg} (column {exc.colno})")
    except (ValueError, RecursionError) as exc:
        return Rejected(reasons.MALFORMED, f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejected(reasons.MALFORMED, f"not a JSON object (a {type(doc).__name__})")
    try:
        canonical = _CANONICAL.encode(doc).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return Rejected(reasons.MALFORMED, "contains an unpaired surrogate escape (not Unicode text)")
    problem, time_us = check_envelope(doc)
    if problem or time_us is None:
        ident, src = doc.get("id"), doc.get("source")
        ident = ident if isinstance(ident, str) else ""
        src = src if isinstance(src, str) else ""
        return Rejected(reasons.WRONG_ENVELOPE, problem or "no time", src, ident)
    data = doc["data"]
    problem = data_problem(data)
    if problem:
        return Rejected(reasons.INVALID_DATA, problem, doc["source"], doc["id"])
    return Event(doc["source"], doc["id"], time_us, data, hashlib.sha256(canonical).digest()[:16], text)
