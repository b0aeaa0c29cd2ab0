"""What the software writes besides its answers: the log files its vendor declares, read slice by slice.

The harness takes each declared log file's size before a scenario starts and, once the driver has
exited, reads what was appended since (at most :data:`LOG_KEPT` bytes per file) into the trace as
a ``software.output`` note, with the driver's error output. The sandbox redacts the secrets it
issued in notes, and the packs' checks look for them there.
"""

from __future__ import annotations

from pathlib import Path

LOG_KEPT = 1 << 20


def offsets(paths: list[Path]) -> dict[Path, int]:
    """Where each log file ends now (0 for a file not written yet)."""
    return {p: p.stat().st_size if p.is_file() else 0 for p in paths}


def appended(since: dict[Path, int]) -> dict[str, str]:
    """What was written to each log file after ``since`` (the whole file if it was truncated or rotated); for a path
    that is not a regular file, a line saying so (it is never opened)."""
    out = {}
    for path, start in since.items():
        if path.exists() and not path.is_file():  # opening a named pipe no one writes to would wait for ever
            out[str(path)] = "(not a regular file — a named pipe, a device or a folder: not read; log_files names files)\n"
            continue
        try:
            size = path.stat().st_size
            with path.open("rb") as fh:
                fh.seek(start if size >= start else 0)
                data = fh.read(LOG_KEPT + 1)
        except OSError:
            continue
        text = data[:LOG_KEPT].decode("utf-8", errors="replace")
        out[str(path)] = text + ("\n… (cut at 1 MiB)\n" if len(data) > LOG_KEPT else "")
    return out
