"""A private copy of the shipped catalog that a test may break, and a CLI runner on it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conformity.cli import cli


@pytest.fixture
def catalog_copy(tmp_path: Path, repo_root: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(repo_root / "referentials", root / "referentials")
    shutil.copytree(repo_root / "waves", root / "waves")
    return root


@pytest.fixture
def edit(catalog_copy: Path) -> Callable[[str, str, str], Path]:
    """``edit(relpath, old, new)``: replace the first ``old`` in a catalog file (which must contain it)."""

    def do(relpath: str, old: str, new: str) -> Path:
        path = catalog_copy / relpath
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {relpath}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return path

    return do


@pytest.fixture
def usine() -> Callable[..., Result]:
    """Run the usine CLI in-process: ``usine("--catalog", path, "validate")``."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run
