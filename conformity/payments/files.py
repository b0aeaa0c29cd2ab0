"""Output files written atomically, streamed: readers see the previous file or the complete new one."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from conformity.files import atomic_output

__all__ = ["atomic_output", "copy_file", "scratch_file"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_COPY_NAME = 100  # characters of an events file's name kept in its copy's name


def scratch_file(folder: Path, name: str) -> Path:
    """A fresh temporary file in ``folder`` for intermediate output (the caller removes it)."""
    return _fresh(folder, prefix=f".{name}.")


def copy_file(folder: Path, name: str) -> Path:
    """A fresh, empty file in ``folder`` for the run's copy of the events file ``name`` (the caller fills and removes
    it). Not hidden, unlike :func:`scratch_file`: Spark skips files whose names start with a dot. Ending in ``.copy``,
    never in the name's own extension: Spark's text reader (Hadoop's) decompresses a file by the end of its name
    (``.gz``, ``.bz2``, ``.deflate``, ``.zst``...), so an events file named so would not be read as the bytes hashed.
    Of ``name`` only letters, digits and ``. _ -`` (others as ``_``), at most ``_COPY_NAME`` of them: Spark reads a
    path as a glob pattern (``[1]``, ``{a,b}``, a backslash) and refuses a ``:`` in a file name, and an events file's
    name of 255 bytes would make a copy's name too long for the filesystem."""
    safe = _UNSAFE.sub("_", name)[-_COPY_NAME:]
    return _fresh(folder, prefix="copy-", suffix=f"-{safe}.copy")


def _fresh(folder: Path, prefix: str, suffix: str = "") -> Path:
    """A new empty file in ``folder`` (created if need be), named ``prefix``…``suffix``."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return Path(tmp)
