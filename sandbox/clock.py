"""Instants as the sandbox writes them in records, traces and events."""

from __future__ import annotations

import datetime as dt


def timestamp(when: dt.datetime | None = None) -> str:
    """``when`` (default: now, UTC) in ISO 8601 to the millisecond, UTC written ``Z``: ``2026-12-03T03:41:07.512Z``."""
    return (when or dt.datetime.now(dt.UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
