"""Reading TOML that someone else wrote (catalog, vendor manifests, payer and payee files): bounded, clear errors.

The one place usine parses TOML. ``tomllib`` recurses on nesting, so a file nested a few thousand
levels deep would end in a ``RecursionError`` traceback: it is refused here as bad input instead.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from conformity.errors import InputError
from conformity.files import read_bounded

MAX_FILE_BYTES = 8 * 1024 * 1024


def loads(text: str, *, source: str = "TOML") -> dict[str, Any]:
    """Parse TOML text; InputError naming ``source``, the line and column, and what is wrong."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg, where = str(exc), ""
        if "(at line" in msg:
            msg, _, loc = msg.rpartition(" (at ")
            where = loc.rstrip(")")
        raise InputError(f"malformed TOML: {msg}", file=source, where=where) from exc
    except RecursionError as exc:
        raise InputError("TOML nested too deeply to be a usine file; refused", file=source) from exc


def load(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> dict[str, Any]:
    """Read and parse a TOML file (UTF-8, at most ``max_bytes``), errors naming the file."""
    p = Path(path)
    data = read_bounded(p, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason}", file=p) from exc
    return loads(text, source=str(p))
