"""``pip install`` gives a complete tool: the wheel built from this repository, installed in a fresh virtual
environment and run from another folder, validates its own catalog, shows waves, runs the reference vendor
against the in-process sandbox and writes a bundle; ``USINE_CATALOG`` still points at a working copy.

This is what a vendor's CI does (build, fresh venv, ``pip install usine-….whl``, run outside the source
tree), so it runs the real tools: ``python -m build`` and ``pip`` (from the package registry).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conformity.paths import SOURCE_ROOT

#: one worker builds and installs the wheel once for the module (./test runs with --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of this checkout's variables or paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("USINE_", "PYTHON", "VIRTUAL_ENV"))}
    return env | extra


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env or clean_env(), text=True, capture_output=True,
                          timeout=600)
    if ok:
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, a working folder outside the repository) with the built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    sh(sys.executable, "-m", "build", "--outdir", dist, SOURCE_ROOT, cwd=tmp)
    wheels = sorted(dist.glob("usine-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    for wanted in ("conformity/catalog_data/referentials/health/pack.toml", "conformity/catalog_data/waves/2026-W1.toml",
                   "conformity/schemas/report.schema.json", "sandbox/openapi.json",
                   "conformity/driverkit/python/driver.py", "conformity/driverkit/javascript/driver.js"):
        assert wanted in names, f"{wanted} is not in {wheels[0].name}"
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    sh(bin_dir / "python", "-m", "pip", "install", "--quiet", wheels[0], cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    return bin_dir, work


def test_the_installed_wheel_validates_and_shows_its_own_catalog(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    out = sh(bin_dir / "usine", "validate", cwd=work).stdout
    assert "catalog OK" in out and "site-packages" in out and str(SOURCE_ROOT) not in out, out
    spec = sh(bin_dir / "usine", "wave", "show", "2026-W1", "-c", "GP", cwd=work).stdout
    assert "PATIENTID-010" in spec and "practitioner.login" in spec
    shown = json.loads(sh(bin_dir / "usine", "referentials", "show", "PATIENTID", "--format", "json", cwd=work).stdout)
    assert shown["id"] == "PATIENTID" and shown["actions"][0]["input"]["type"] == "object"
    for lang, files in (("python", ("driver.py", "actions.py")), ("javascript", ("driver.js", "actions.js"))):
        sh(bin_dir / "usine", "driver", "init", f"driver-{lang}", "--lang", lang, cwd=work)
        assert all((work / f"driver-{lang}" / name).stat().st_size for name in (*files, "vendor.toml")), lang


def test_usine_catalog_still_points_at_a_working_copy(installed: tuple[Path, Path], tmp_path: Path) -> None:
    bin_dir, work = installed
    copy = tmp_path / "catalog"
    for part in ("referentials", "waves"):
        shutil.copytree(SOURCE_ROOT / part, copy / part)
    out = sh(bin_dir / "usine", "validate", cwd=work, env=clean_env(USINE_CATALOG=str(copy))).stdout
    assert f"({copy})" in out, out
    (copy / "waves" / "2026-W1.toml").write_text("format = 'usine.wave/1'\n")
    broken = sh(bin_dir / "usine", "validate", cwd=work, env=clean_env(USINE_CATALOG=str(copy)), ok=False)
    assert broken.returncode == 2 and "2026-W1.toml" in broken.stderr


def test_the_installed_wheel_runs_the_reference_vendor_and_writes_a_bundle(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    vendor = work / "reference"
    shutil.copytree(SOURCE_ROOT / "examples" / "vendors" / "health" / "reference", vendor,
                    ignore=shutil.ignore_patterns("logs", "__pycache__"))
    done = sh(bin_dir / "usine", "run", "--wave", "2026-W1", "--vendor", vendor / "vendor.toml", "--only", "PRACAUTH",
              "--out", work / "out", cwd=work)
    report = json.loads((work / "out" / "report.json").read_text())
    assert report["summary"]["passed"] and report["summary"]["must_passed"] > 10, done.stderr[-2000:]
    assert zipfile.ZipFile(work / "out" / "bundle.zip").namelist()
