"""Signed segments over a JSON-lines events file: the infrastructure seals what it emitted, anyone verifies.

An events file ``data-received.jsonl`` has a sidecar ``data-received.jsonl.segments``: one JWS per
line (``conformity.signing``), whose payload (``conformity/schemas/event-segment.schema.json``) says
"lines first_line..last_line of this file, count lines, bytes [offset, offset + length), hash to
sha256; their events have these sources and times; I follow segment seq - 1, whose payload hashes to
prev". Segments tile the file from line 1; lines after the last segment are not vouched for yet.
Verifying is a pass over the sidecar and a hash of the file's bytes per segment, apart from reading
the events themselves (``conformity.payments.authenticate``); the format is in
``conformity/schemas/event-segments.md``.

:class:`Sealer` is the writing side: it follows an events file as lines are appended, and seals the
unsealed tail into a new segment (every ``every`` lines, or when asked); it resumes after a restart
from the sidecar and the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from joserfc.util import urlsafe_b64decode

from conformity import jsonio
from conformity.errors import InputError
from conformity.files import append_whole
from conformity.signing import SigningKey, unverified_payload

SEGMENT_FORMAT = "usine.event-segment/1"
SIDECAR_SUFFIX = ".segments"
DEFAULT_EVERY = 1000
ISSUER_NAME = "Infrastructure nationale (bac à sable usine)"


def sidecar_path(events: Path) -> Path:
    """Where the signed segments of an events file are: beside it, ``<name>.segments``."""
    return events.with_name(events.name + SIDECAR_SUFFIX)


def payload_bytes(signed: dict[str, Any]) -> bytes:
    """The payload bytes of a JWS (what ``prev`` hashes), without verifying it."""
    return urlsafe_b64decode(str(signed["payload"]).encode("ascii"))


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


#: the segment schema's ``date-time`` format, checked as the verifier checks it (jsonschema's checker)
_DATE_TIME = jsonschema.FormatChecker(formats=("date-time",))


def _instant(text: Any) -> dt.datetime | None:
    """The instant of an event's time when it may be a segment's ``time_min``/``time_max``: an RFC 3339 date-time
    as the segment schema's ``date-time`` format accepts it (``T`` and ``Z`` in either case), else None. Python's
    ``fromisoformat`` alone also reads ``2026-05-01 09:00:00Z``: sealed as a time range, the verifier would refuse
    the segment and every good event in it."""
    if not isinstance(text, str) or not _DATE_TIME.conforms(text, "date-time"):
        return None
    try:
        when = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        return when.astimezone(dt.UTC) if when.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def describe(line: bytes) -> tuple[str | None, str | None]:
    """(source, time) of an event line, when it says them; (None, None) for anything else."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    source, time = doc.get("source"), doc.get("time")
    return (source if isinstance(source, str) else None), (time if isinstance(time, str) else None)


@dataclass(slots=True)
class _Tail:
    """The unsealed lines after the last segment: where they start, their hash, sources and time range."""

    seq: int
    prev: str | None
    first_line: int
    offset: int
    count: int = 0
    length: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    sources: set[str] = field(default_factory=set)
    time_min: tuple[dt.datetime, str] | None = None
    time_max: tuple[dt.datetime, str] | None = None

    def add(self, line: bytes, source: str | None, time: str | None) -> None:
        self.count += 1
        self.length += len(line)
        self.hasher.update(line)
        if source:
            self.sources.add(source)
        when = _instant(time)
        if when is not None and time is not None:
            if self.time_min is None or when < self.time_min[0]:
                self.time_min = (when, time)
            if self.time_max is None or when > self.time_max[0]:
                self.time_max = (when, time)


class Sealer:
    """Seals an append-only events file into signed segments (sidecar ``<file>.segments``).

    ``add(line)`` is called after each line (with its LF) is durably appended to the events file;
    ``seal()`` signs the lines added since the last segment and appends the segment to the sidecar
    (fsync'd). Not thread-safe: the caller serialises appends and seals.
    """

    def __init__(self, events: Path, key: SigningKey, *, every: int = DEFAULT_EVERY, issuer: str = ISSUER_NAME):
        if every < 1:
            raise ValueError("every must be at least 1")
        self.events, self.sidecar = events, sidecar_path(events)
        self.key, self.every, self.issuer = key, every, issuer
        self.segments = 0
        self.stream = ""
        self._tail = self._resume()

    # ------------------------------------------------------------------ resuming
    def _resume(self) -> _Tail:
        """The state after the last segment in the sidecar; lines already in the file after it are re-added."""
        last: dict[str, Any] | None = None
        prev: str | None = None
        if self.sidecar.exists():
            good = 0
            with open(self.sidecar, "rb") as fh:
                for number, raw in enumerate(fh, 1):
                    if not raw.endswith(b"\n"):
                        break  # a torn write: never acknowledged, dropped below
                    try:
                        signed = jsonio.loads(raw, source=f"{self.sidecar}, line {number}")
                        last = unverified_payload(signed, source=str(self.sidecar))
                        prev = hashlib.sha256(payload_bytes(signed)).hexdigest()
                        if not {"stream", "seq", "last_line", "offset", "length"} <= set(last):
                            raise ValueError("not a segment payload")
                    except (ValueError, KeyError, TypeError, InputError) as exc:
                        raise InputError(f"line {number} is not a signed segment ({exc}); the events file and its "
                                         "segments cannot be resumed: move both aside", file=self.sidecar) from exc
                    good += len(raw)
                    self.segments += 1
            if good != self.sidecar.stat().st_size:
                os.truncate(self.sidecar, good)
        if last is None:
            self.stream = "str_" + secrets.token_hex(16)
            tail = _Tail(0, None, 1, 0)
        else:
            self.stream = last["stream"]
            tail = _Tail(last["seq"] + 1, prev, last["last_line"] + 1, last["offset"] + last["length"])
        size = self.events.stat().st_size if self.events.exists() else 0
        if size < tail.offset:
            raise InputError(f"the events file is shorter ({size} bytes) than its sealed segments say "
                             f"({tail.offset} bytes): it was truncated or replaced; move it and {self.sidecar.name} "
                             "aside", file=self.events)
        if size > tail.offset:
            with open(self.events, "rb") as fh:
                fh.seek(tail.offset)
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # an unterminated last line is not an event yet
                    tail.add(line, *describe(line))
                    if tail.count >= self.every:
                        tail = self._seal(tail)
        return tail

    # ------------------------------------------------------------------ sealing
    @property
    def unsealed(self) -> int:
        """Lines appended since the last segment."""
        return self._tail.count

    def add(self, line: bytes, source: str | None = None, time: str | None = None) -> dict[str, Any] | None:
        """Account for one appended line (LF included); seals and returns the segment every ``every`` lines."""
        if not line.endswith(b"\n"):
            raise ValueError("a sealed line ends with LF")
        self._tail.add(line, source, time)
        if self._tail.count >= self.every:
            return self.seal()
        return None

    def seal(self, now: dt.datetime | None = None) -> dict[str, Any] | None:
        """Sign the unsealed lines as one segment (appended to the sidecar); its payload, or None if none."""
        if self._tail.count == 0:
            return None
        self._tail = self._seal(self._tail, now)
        return self.last_manifest

    def _seal(self, tail: _Tail, now: dt.datetime | None = None) -> _Tail:
        doc = {
            "format": SEGMENT_FORMAT, "stream": self.stream, "seq": tail.seq,
            "first_line": tail.first_line, "last_line": tail.first_line + tail.count - 1, "count": tail.count,
            "offset": tail.offset, "length": tail.length, "sha256": tail.hasher.hexdigest(), "prev": tail.prev,
            "time_min": tail.time_min[1] if tail.time_min else None,
            "time_max": tail.time_max[1] if tail.time_max else None,
            "sources": sorted(tail.sources), "sealed": _iso(now or dt.datetime.now(dt.UTC)),
            "issuer": {"name": self.issuer, "key_id": self.key.kid},
        }
        signed = _append(self.sidecar, self.key, doc)
        self.segments += 1
        self.last_manifest = doc
        return _Tail(tail.seq + 1, hashlib.sha256(payload_bytes(signed)).hexdigest(),
                     tail.first_line + tail.count, tail.offset + tail.length)


def _append(sidecar: Path, key: SigningKey, doc: dict[str, Any]) -> dict[str, Any]:
    """Sign ``doc`` and append it to ``sidecar`` as one line, durably (fsync'd); the JWS."""
    signed = key.sign_document(doc)
    data = (json.dumps(signed, separators=(",", ":")) + "\n").encode("ascii")
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    append_whole(sidecar, data)
    return signed


def seal_whole(path: Path, key: SigningKey, *, count: int, sources: Iterable[str], time_min: str | None,
               time_max: str | None, issuer: str = ISSUER_NAME, now: dt.datetime | None = None) -> dict[str, Any]:
    """Seal a file written at once (a Parquet events file, whose ``count`` rows are its lines): a new sidecar of one
    segment over all its bytes (offset 0, its length, the SHA-256 of the whole file); the segment's payload."""
    if count < 1:
        raise ValueError("a sealed file holds at least one event")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    doc = {
        "format": SEGMENT_FORMAT, "stream": "str_" + secrets.token_hex(16), "seq": 0, "first_line": 1,
        "last_line": count, "count": count, "offset": 0, "length": path.stat().st_size, "sha256": h.hexdigest(),
        "prev": None, "time_min": time_min, "time_max": time_max, "sources": sorted(set(sources)),
        "sealed": _iso(now or dt.datetime.now(dt.UTC)), "issuer": {"name": issuer, "key_id": key.kid},
    }
    sidecar = sidecar_path(path)
    sidecar.unlink(missing_ok=True)
    _append(sidecar, key, doc)
    return doc


def seal_file(path: Path, key: SigningKey, *, every: int = DEFAULT_EVERY) -> int:
    """Seal every complete line of an events file not sealed yet (all of them without a sidecar); segments in all."""
    sealer = Sealer(path, key, every=every)
    sealer.seal()
    return sealer.segments


def write_sealed(path: Path, lines: Iterable[bytes | str], key: SigningKey, *, every: int = DEFAULT_EVERY,
                 seal_tail: bool = True) -> Path:
    """Write an events file from whole lines (LF added when missing) and seal it (tests, benchmarks, demos).

    ``seal_tail=False`` leaves the last ``len % every`` lines unsealed, as a live file between seals.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, sidecar_path(path)):
        old.unlink(missing_ok=True)
    sealer = Sealer(path, key, every=every)
    with open(path, "wb") as fh:
        for item in lines:
            raw = item.encode("utf-8") if isinstance(item, str) else item
            if not raw.endswith(b"\n"):
                raw += b"\n"
            fh.write(raw)
            sealer.add(raw, *describe(raw))
    if seal_tail:
        sealer.seal()
    return path
