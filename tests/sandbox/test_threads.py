"""The threads a served sandbox hands blocking work to: ``usine sandbox serve --threads N`` (default 4 on
PostgreSQL, anyio's 40 on SQLite).

anyio's default of 40 threads a loop cost a PostgreSQL-backed worker a quarter more CPU a request than 4 (measured,
``sandbox.app.limit_threads``); these tests hold that the number configured is the number used: by the store's calls
(``sandbox.deps.store_call`` on PostgreSQL) and by plain-function routes alike, on the loop the sandbox serves on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import anyio.to_thread
import pytest
from click.testing import CliRunner
from fastapi.concurrency import run_in_threadpool
from fastapi.testclient import TestClient

from conformity.cli import cli
from sandbox.app import create_app
from sandbox.config import THREADS, SandboxConfig


def most_at_once(client: TestClient, calls: int, target: int) -> int:
    """How many of ``calls`` blocking calls handed to the thread pool (as the store's are) ran at the same time.

    The first calls wait (10 s at most) until ``target`` of them are running, however slowly a loaded machine starts
    the pool's threads: a pool of ``target`` threads shows exactly ``target``, never fewer for a late thread (a fixed
    sleep did, at load 20). Past ``target`` no call waits, and each still holds its thread 50 ms: a pool larger than
    told shows more."""
    running = most = arrived = 0
    changed = threading.Condition()

    def work() -> None:
        nonlocal running, most, arrived
        with changed:
            running += 1
            arrived += 1
            most = max(most, running)
            changed.notify_all()
            changed.wait_for(lambda: arrived >= target, timeout=10)
        time.sleep(0.05)
        with changed:
            running -= 1

    async def hand_over() -> None:
        await asyncio.gather(*(run_in_threadpool(work) for _ in range(calls)))

    assert client.portal is not None
    client.portal.call(hand_over)
    return most


async def tokens() -> float:
    return anyio.to_thread.current_default_thread_limiter().total_tokens


#: anyio's own default (what a SQLite-backed sandbox keeps)
ANYIO_DEFAULT = 40


@pytest.mark.parametrize("threads", [None, 2, 7])
def test_the_served_loop_hands_blocking_work_to_the_threads_configured(tmp_path: Path, threads: int | None) -> None:
    config = SandboxConfig(data_dir=tmp_path, threads=threads)
    expected = threads or ANYIO_DEFAULT  # SQLite (these tests' store): anyio's default unless told
    with TestClient(create_app(config)) as client:  # the lifespan runs: as `usine sandbox serve` starts
        assert client.portal is not None
        assert client.portal.call(tokens) == expected
        assert most_at_once(client, 12, min(12, expected)) == min(12, expected)
        assert client.get("/health").status_code == 200  # a plain-function route, served from that pool


def test_postgresql_takes_four_threads_unless_told_and_sqlite_anyio_s_default() -> None:
    url = "postgresql://u:p@127.0.0.1/db"
    assert THREADS == 4
    assert SandboxConfig(Path("x"), database=url).loop_threads() == THREADS
    assert SandboxConfig(Path("x"), database=url, threads=16).loop_threads() == 16
    assert SandboxConfig(Path("x")).loop_threads() is None
    assert SandboxConfig(Path("x"), threads=3).loop_threads() == 3
    assert "default: 4 with --database" in " ".join(CliRunner().invoke(cli, ["sandbox", "serve", "--help"]).output.split())


def test_worker_processes_get_the_threads_with_the_rest_of_the_settings(tmp_path: Path) -> None:
    config = SandboxConfig(data_dir=tmp_path, threads=9, workers=2, database="postgresql://u:p@127.0.0.1/db")
    assert SandboxConfig.from_json(config.to_json()) == config  # what `--workers N` starts each process with


@pytest.mark.parametrize("given", ["0", "-1", "257", "four"])
def test_a_number_of_threads_out_of_range_is_refused_before_anything_is_created(tmp_path: Path, given: str) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--threads", given, "--data", str(tmp_path / "state")])
    assert result.exit_code == 2
    assert "--threads" in result.output and given in result.output
    assert not (tmp_path / "state").exists()


def test_a_postgresql_backed_sandbox_serves_on_four_threads(tmp_path: Path, postgresql_url: str) -> None:
    with TestClient(create_app(SandboxConfig(data_dir=tmp_path, database=postgresql_url))) as client:
        assert client.portal is not None
        assert client.portal.call(tokens) == THREADS
        assert most_at_once(client, 12, THREADS) == THREADS
        assert client.get("/health").status_code == 200
