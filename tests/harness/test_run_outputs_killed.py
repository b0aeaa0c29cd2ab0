"""``usine run`` killed (SIGKILL: no handler runs) at any point: its --out folder holds the previous run's four
outputs or the new run's, each whole and of one run, and the next run completes."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conformity.harness.outputs import OUTPUTS
from tests.harness.test_run_cli import vendor_manifest


def whole_and_of_one_run(out: Path) -> str:
    """The run id of the outputs in ``out``, once each is checked whole and all are checked of that one run."""
    with zipfile.ZipFile(io.BytesIO((out / "bundle.zip").read_bytes())) as bundle:
        assert bundle.testzip() is None
        members = {name: bundle.read(name) for name in bundle.namelist()}
    manifest = json.loads(members["manifest.json"])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["run_id"] == manifest["run_id"] and report == json.loads(members["report.json"])
    assert (out / "junit.xml").read_bytes() == members["junit.xml"]
    assert (out / "report.html").read_bytes() == members["report.html"]
    return str(report["run_id"])


@pytest.mark.slow
def test_a_run_killed_at_any_point_leaves_one_runs_outputs_and_the_next_run_completes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "conformity", "run", "--wave", "2026-W1", "--vendor",
               str(vendor_manifest("reference")), "--only", "PRACAUTH", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert first.returncode in (0, 1), first.stderr
    runs = {whole_and_of_one_run(out)}
    rng = random.Random(20261205)
    for _ in range(3):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        try:
            proc.wait(timeout=rng.uniform(1.0, 8.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        runs.add(whole_and_of_one_run(out))
    last = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert last.returncode in (0, 1), last.stderr
    assert whole_and_of_one_run(out) not in runs  # the last run's own outputs, whatever the kills left
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == set(OUTPUTS)
