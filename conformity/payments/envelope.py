"""The CloudEvents 1.0 JSON envelope, checked in code, and usine's profile of it for data-received events.

The rules of the CloudEvents 1.0 specification and its JSON format: required ``id``, ``source``,
``specversion`` (exactly ``"1.0"``) and ``type``; optional ``datacontenttype``, ``dataschema`` (absolute
URI), ``subject`` and ``time`` (RFC 3339); ``data`` and ``data_base64`` never both; extension attribute
names of lower-case ASCII letters and digits, with string, boolean or 32-bit integer values. The usine
profile adds: type ``fr.usine.data.received``, a ``time``, JSON ``data`` (no ``data_base64``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

SPECVERSION = "1.0"
EVENT_TYPE = "fr.usine.data.received"
REQUIRED = ("id", "source", "specversion", "type")
OPTIONAL = ("datacontenttype", "dataschema", "subject", "time")
_SKIP = frozenset(REQUIRED + ("data",))
INT32 = (-(2**31), 2**31 - 1)

_EXTENSION_NAME = re.compile(r"[a-z0-9]+\Z")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\Z")
_NO_SPACE = re.compile(r"[^\s\x00-\x1f\x7f]+\Z")
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_JSON_MEDIA = re.compile(r"application/(?:[\w.+-]+\+)?json\s*(?:;.*)?\Z", re.IGNORECASE)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: the typed shape of a data-received event (DuckDB's ``json_transform`` types), the columns of a Parquet events file
#: (``parquet.LAYOUT``) and what the columnar engines read of a line
SHAPE = ('{"specversion":"VARCHAR","type":"VARCHAR","source":"VARCHAR","id":"VARCHAR","time":"VARCHAR",'
         '"subject":"VARCHAR","datacontenttype":"VARCHAR","dataschema":"VARCHAR","data":{"installation_id":"VARCHAR",'
         '"vendor_id":"VARCHAR","software":{"id":"VARCHAR","name":"VARCHAR","version":"VARCHAR",'
         '"registration_id":"VARCHAR"},"site":{"id":"VARCHAR","size":"VARCHAR","name":"VARCHAR"},"wave":"VARCHAR",'
         '"category":"VARCHAR","kind":"VARCHAR","document_type":"VARCHAR","bytes":"BIGINT","sha256":"VARCHAR",'
         '"reference":"VARCHAR"}}')


def parse_rfc3339_us(text: str) -> int | None:
    """An RFC 3339 timestamp as UTC microseconds since the epoch, or None if it is not one."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    day, clock, frac, zone = m.groups()
    frac = (frac or "")[:7]  # microsecond precision: extra digits are truncated
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        when = dt.datetime.fromisoformat(f"{day}T{clock}{frac}{zone}").astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not a date, or its UTC instant is outside years 1 to 9999
        return None
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_us(value: int) -> str:
    """UTC microseconds since the epoch as RFC 3339 (milliseconds kept when present)."""
    when = _EPOCH + dt.timedelta(microseconds=value)
    spec = "seconds" if value % 1_000_000 == 0 else ("milliseconds" if value % 1000 == 0 else "microseconds")
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def to_us(when: dt.datetime) -> int:
    """An aware datetime as UTC microseconds since the epoch."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time_problem(value: Any) -> tuple[str | None, int | None]:
    if not isinstance(value, str) or not value:
        return "'time' must be a non-empty string when present", None
    time_us = parse_rfc3339_us(value)
    if time_us is None:
        return f"'time' must be an RFC 3339 timestamp, got {value!r}", None
    return None, time_us


def cloudevents_check(event: dict[str, Any]) -> tuple[str | None, int | None]:
    """(the first way ``event`` breaks the CloudEvents 1.0 JSON format or None, its time in microseconds)."""
    for name in REQUIRED:
        value = event.get(name)
        if value is None and name not in event:
            return f"required attribute '{name}' is missing", None
        if type(value) is not str or not value:
            return f"'{name}' must be a non-empty string", None
    if event["specversion"] != SPECVERSION:
        return f"specversion must be '1.0', got {event['specversion']!r}", None
    if not _NO_SPACE.match(event["source"]):
        return "'source' must be a URI-reference (no spaces or control characters)", None
    time_us = None
    for name, value in event.items():
        if name in _SKIP:
            continue
        if name in OPTIONAL:
            if value is None:
                continue
            if name == "time":
                problem, time_us = _time_problem(value)
                if problem:
                    return problem, None
            elif type(value) is not str or not value:
                return f"'{name}' must be a non-empty string when present", None
            elif name == "dataschema" and not _ABSOLUTE_URI.match(value):
                return "'dataschema' must be an absolute URI", None
        elif name == "data_base64":
            if "data" in event:
                return "'data' and 'data_base64' must not both be present", None
            if not isinstance(value, (str, type(None))):
                return "'data_base64' must be a base64 string", None
        elif not _EXTENSION_NAME.match(name):
            return f"extension attribute name {name!r} must be lower-case ASCII letters and digits", None
        elif not (value is None or isinstance(value, (str, bool))
                  or (type(value) is int and INT32[0] <= value <= INT32[1])):
            return f"extension attribute '{name}' must be a string, a boolean or a 32-bit integer", None
    return None, time_us


def profile_problem(event: dict[str, Any], time_us: int | None) -> str | None:
    """The first way a valid CloudEvent is not a usine data-received event, or None."""
    if event["type"] != EVENT_TYPE:
        return f"type must be '{EVENT_TYPE}', got {event['type']!r}"
    if time_us is None:
        return "'time' is required for data-received events"
    media = event.get("datacontenttype")
    if media is not None and media != "application/json" and not _JSON_MEDIA.match(media):
        return f"datacontenttype must be JSON, got {media!r}"
    if "data_base64" in event:
        return "data must be JSON ('data'), not 'data_base64'"
    data = event.get("data")
    if type(data) is not dict:
        return "'data' must be a JSON object"
    subject = event.get("subject")
    if subject is not None and subject != data.get("installation_id"):
        return "'subject' differs from data.installation_id"
    return None


def check_envelope(event: Any) -> tuple[str | None, int | None]:
    """CloudEvents 1.0 first, then the usine profile: (the first problem or None, the event time in µs)."""
    if not isinstance(event, dict):
        return "a CloudEvent is a JSON object", None
    problem, time_us = cloudevents_check(event)
    if problem is None:
        problem = profile_problem(event, time_us)
    return problem, time_us


def envelope_problem(event: Any) -> str | None:
    """The first problem of ``event`` as a usine data-received CloudEvent, or None."""
    return check_envelope(event)[0]
