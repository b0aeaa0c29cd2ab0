"""The harness draws scenario inputs with Hypothesis, which caches Unicode tables in its storage folder: by default
``.hypothesis/`` in the working folder, where a vendor running ``usine run`` in its project found one. A command (and a
benchmark) puts it in usine's cache folder instead, unless HYPOTHESIS_STORAGE_DIRECTORY says where."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DRAW = ("import sys; from conformity.paths import keep_hypothesis_cache_aside; keep_hypothesis_cache_aside(); "
        "from conformity.packs.health.scenarios.documents import generated_contents; "
        "assert generated_contents(7)")


def _draw(cwd: Path, **env: str) -> None:
    base = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", DRAW], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=base | {"PYTHONPATH": str(root)} | env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_draw_leaves_nothing_in_the_working_folder_and_caches_in_usines_cache(tmp_path: Path) -> None:
    work, cache = tmp_path / "project", tmp_path / "cache"
    work.mkdir()
    _draw(work, XDG_CACHE_HOME=str(cache))
    assert list(work.iterdir()) == []
    assert (cache / "usine" / "hypothesis").is_dir()


def test_hypothesis_storage_directory_still_says_where(tmp_path: Path) -> None:
    work, chosen = tmp_path / "project", tmp_path / "chosen"
    work.mkdir()
    _draw(work, XDG_CACHE_HOME=str(tmp_path / "cache"), HYPOTHESIS_STORAGE_DIRECTORY=str(chosen))
    assert list(work.iterdir()) == [] and chosen.is_dir() and not (tmp_path / "cache").exists()
