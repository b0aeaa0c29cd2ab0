"""Helpers shared by every test area."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest


def required(what: str, how: str) -> NoReturn:
    """Skip a test that needs a real part absent here (saying how to get it); FAIL it when CI=true."""
    message = f"{what} is absent: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@contextmanager
def port_in_use(host: str = "127.0.0.1") -> Iterator[int]:
    """A port another socket listens on while the block runs (a server given it must refuse it)."""
    with socket.socket() as held:
        held.bind((host, 0))
        held.listen()
        yield held.getsockname()[1]


def run_periodic_until(task: Callable[[], Coroutine[Any, Any, None]], done: Callable[[], bool],
                       polls: int = 500) -> bool:
    """Run a periodic task (``task()``, a coroutine that loops for ever) on a fresh event loop until ``done()`` or
    ``polls`` turns of 10 ms, then cancel it; whether it was still running then (a periodic task must not end)."""
    import asyncio
    import contextlib

    async def scenario() -> bool:
        running = asyncio.create_task(task())
        for _ in range(polls):
            await asyncio.sleep(0.01)
            if done():
                break
        alive = not running.done()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        return alive

    return asyncio.run(scenario())


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` (created) as a tmpfs of ``size`` ("64k", "1m") for the block, to meet a real full disk; the test is
    skipped, saying why, where mounting is not permitted (not root, a container without CAP_SYS_ADMIN)."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, timeout=30)


def without_mutations_breaking(monkeypatch: pytest.MonkeyPatch, requirement: str) -> None:
    """``usine coverage`` sees every pack's trace mutations but those declaring they break ``requirement`` (for the
    test's duration): what it says of a requirement no defect breaks alone."""
    import conformity.defects.coverage as defects_coverage
    from conformity.checks.registry import Registry
    from conformity.defects import MUTATIONS, Mutation

    defects_coverage.load_pack_defects()  # every pack's mutations, before the registry is replaced
    kept: Registry[Mutation] = Registry("mutation")
    for mid, m in MUTATIONS.items():
        if requirement not in m.breaks:
            kept.register(mid, m)
    monkeypatch.setattr(defects_coverage, "MUTATIONS", kept)
