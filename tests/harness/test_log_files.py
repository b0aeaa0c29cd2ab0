"""The log files a vendor declares (``log_files``): read slice by slice, never holding the run."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from conformity.harness.logs import LOG_KEPT, appended, offsets


def _appended_within(since: dict[Path, int], seconds: float) -> dict[str, str] | None:
    """What :func:`appended` returns, or None when it has not returned within ``seconds``."""
    out: list[dict[str, str]] = []
    worker = threading.Thread(target=lambda: out.append(appended(since)), daemon=True)
    worker.start()
    worker.join(seconds)
    return out[0] if out else None


def test_a_log_file_that_is_a_named_pipe_or_a_folder_is_said_not_read(tmp_path: Path) -> None:
    """A ``log_files`` entry naming a named pipe (``mkfifo``, as some log shippers use) made the harness wait for
    ever after the scenario: opening a pipe no one writes to blocks. It is now said and not read."""
    pipe, folder, log = tmp_path / "pipe.log", tmp_path / "dir.log", tmp_path / "app.log"
    os.mkfifo(pipe)
    folder.mkdir()
    log.write_text("before\n")
    since = offsets([pipe, folder, log])
    with log.open("a") as fh:
        fh.write("after\n")
    got = _appended_within(since, 5.0)
    assert got is not None, "appended() blocked on a named pipe"
    assert got[str(log)] == "after\n"
    for path in (pipe, folder):
        assert "not a regular file" in got[str(path)] and "not read" in got[str(path)]


def test_what_a_log_file_gained_is_cut_at_its_bound(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    since = offsets([log])
    log.write_bytes(b"x" * (LOG_KEPT + 10))
    got = appended(since)[str(log)]
    assert got.startswith("x" * LOG_KEPT) and got.endswith("(cut at 1 MiB)\n")
