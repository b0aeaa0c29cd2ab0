"""The benchmarks that evidence issue 14's bars still run end to end, on workloads small enough for CI: each prints its
figures and the bars' lines (the figures themselves are measured by running the scripts, never judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_sandbox_throughput_prints_both_intake_ratios_and_the_capacity_table(tmp_path: Path) -> None:
    out = _run("sandbox_throughput.py", "--documents", "12", "--intake-sessions", "3", "--sessions", "2",
               "--per-session", "2", "--vendors", "", cwd=tmp_path)
    assert "1. 12 documents" in out and "by CPU per document (bar: 25 %" in out
    assert "1b. 12 documents from 3 sessions at once" in out and "by rate" in out and "(bar: 25 %: " in out
    assert "2b. capacity" in out
    assert list(tmp_path.iterdir()) == []  # its state folder was temporary


def test_payments_run_prints_the_bars_and_the_cost_per_event(tmp_path: Path) -> None:
    out = _run("payments_run.py", "--events", "3000", "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    assert "bars: run / DuckDB scan = " in out and "run / orjson scan = " in out
    assert "cost per event of the payment run:" in out and "peak RSS" in out


def test_harness_run_prints_the_wave_run_against_its_bar(tmp_path: Path) -> None:
    out = _run("harness_run.py", cwd=tmp_path)
    assert "wall time: " in out and "5 s bar" in out and "ratio run / re-derivation" in out
    assert list(tmp_path.iterdir()) == []  # its run's outputs went to a temporary folder
