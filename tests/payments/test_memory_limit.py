"""``usine pay run --memory-limit``: DuckDB's memory for a run, checked before anything is read, the same outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from conformity.payments import engine
from conformity.payments.engine import DEFAULT_MEMORY_BYTES, MIN_MEMORY_BYTES, memory_bytes
from tests.payments import mixed
from tests.payments.builders import events_for, installation
from tests.payments.workspace import Workspace


@pytest.mark.parametrize(("size", "expected"), [
    ("256MB", 256 * 10**6), ("2GiB", 2 * 2**30), ("1.5GB", 15 * 10**8), (" 4 gb ", 4 * 10**9), ("64MiB", 64 * 2**20),
    ("1TB", 10**12), ("67108864B", 2**26), ("65536KiB", 2**26)])
def test_a_memory_size_reads_decimal_and_binary_units(size: str, expected: int) -> None:
    assert memory_bytes(size) == expected


@pytest.mark.parametrize(("size", "why"), [
    ("-1MB", "not a memory size"),  # DuckDB itself would read it as no limit at all
    ("abc", "not a memory size"), ("", "not a memory size"), ("256", "not a memory size"), ("1e3MB", "not a memory size"),
    ("2XB", "not a memory size"), ("2 G B", "not a memory size"), ("0.5 MB", "less than the 64 MiB"),
    ("63MiB", "less than the 64 MiB"), ("12KB", "less than the 64 MiB")])
def test_a_bad_or_too_small_memory_size_is_refused_saying_why(size: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        memory_bytes(size)


def test_the_default_is_the_engine_s_own() -> None:
    assert DEFAULT_MEMORY_BYTES == memory_bytes(engine.MEMORY_LIMIT) >= MIN_MEMORY_BYTES


@pytest.mark.parametrize("size", ["-1MB", "12KB", "lots", "999999TB"])
def test_the_command_refuses_a_bad_memory_limit_before_reading_anything(ws: Workspace, size: str) -> None:
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", "M"), 5)), extra=("--memory-limit", size))
    assert r.returncode == 2, r.stderr
    assert "--memory-limit" in r.stderr and repr(size) in r.stderr and "Traceback" not in r.stderr
    assert not ws.ledger.exists() and not r.out.exists()
    if size == "999999TB":  # QA (orders): accepted, DuckDB would take it and swap or be killed
        assert "more than this machine's memory" in r.stderr


@pytest.fixture
def given(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``memory_limit`` of every DuckDB connection the engine opens from now on."""
    seen: list[Any] = []
    connect = duckdb.connect

    def recording(*args: Any, config: dict[str, Any] | None = None, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        seen.append((config or {}).get("memory_limit"))
        return connect(*args, config=config or {}, **kwargs)

    monkeypatch.setattr(engine.duckdb, "connect", recording)
    return seen


def test_a_run_with_the_least_memory_pays_and_refuses_as_with_the_default(tmp_path: Path, given: list[Any]) -> None:
    """The two runs of ``mixed`` (every refusal reason, payments, repeats) on 64 MiB and on the default: the same
    outputs, byte for byte; DuckDB was given each limit."""
    results = []
    ws, first, second = mixed.workspace(tmp_path / "ws")
    for name, memory in (("least", MIN_MEMORY_BYTES), ("default", DEFAULT_MEMORY_BYTES)):
        ledger = tmp_path / name / "ledger.sqlite3"
        both = [mixed.outputs(out, mixed.run(ws, files, ledger, out, memory_limit=memory))
                for files, out in (((first,), tmp_path / name / "o1"), ((second,), tmp_path / name / "o2"))]
        results.append(both)
    assert given == [f"{MIN_MEMORY_BYTES}B"] * 2 + [f"{DEFAULT_MEMORY_BYTES}B"] * 2
    assert results[0] == results[1]
    assert results[0][0]["stats"]["paid"] > 0 and results[0][0]["stats"]["refused"] > 0


def test_the_command_gives_duckdb_the_memory_it_was_told(ws: Workspace, given: list[Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from conformity.cli import cli

    monkeypatch.setenv("USINE_HOME", str(ws.root / "home"))
    ws.label()
    f = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    r = CliRunner().invoke(cli, [*ws.args((f,), ws.root / "out", "2027-06-30T23:59:59Z", "2026-W1"),
                                 "--memory-limit", "3GiB"])
    assert r.exit_code == 0, r.output
    assert given == [f"{3 * 2**30}B"]
