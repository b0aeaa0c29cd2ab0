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
    """What was written to each log file after ``since`` (the whole file if it was truncated or rotated)."""
    out = {}
    for path, start in since.items():
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
