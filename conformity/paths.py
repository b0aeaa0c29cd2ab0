"""Where things are: the embedded catalog, schemas, and default output and state folders."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMAS_DIR = PACKAGE_DIR / "schemas"
SOURCE_ROOT = PACKAGE_DIR.parent
#: where an installed distribution carries the catalog: the build copies the source tree's referentials/ and
#: waves/ there (``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml)
PACKAGED_CATALOG = PACKAGE_DIR / "catalog_data"


def is_catalog(root: Path) -> bool:
    """Whether ``root`` holds a catalog (its referentials/ and waves/ folders)."""
    return (root / "referentials").is_dir() and (root / "waves").is_dir()


def default_catalog_root() -> Path:
    """THE place the catalog data is found (every reader goes through this function):

    ``$USINE_CATALOG`` (a working copy) when set; else the catalog the installed distribution carries
    (a wheel); else the source tree this package runs from (a checkout, an editable install). A missing
    catalog is reported by the loader, naming the folder it looked at.
    """
    env = os.environ.get("USINE_CATALOG")
    if env:
        return Path(env)
    if is_catalog(PACKAGED_CATALOG):
        return PACKAGED_CATALOG
    return SOURCE_ROOT


def schema_path(name: str) -> Path:
    """Path of one of usine's own JSON Schemas, e.g. ``schema_path("wave")``."""
    return SCHEMAS_DIR / f"{name}.schema.json"


def shared_schemas_dir() -> Path | None:
    """The official third-party schemas folder (../shared/schemas), if present."""
    env = os.environ.get("USINE_SHARED_SCHEMAS")
    candidates = [Path(env)] if env else []
    candidates += [SOURCE_ROOT.parent / "shared" / "schemas"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def state_dir() -> Path:
    """Where usine keeps local state by default (keys, registry, ledger): $USINE_HOME or ~/.local/share/usine."""
    env = os.environ.get("USINE_HOME")
    return Path(env) if env else Path.home() / ".local" / "share" / "usine"


def cache_dir() -> Path:
    """Where usine keeps what it can make again (caches): $XDG_CACHE_HOME/usine, or ~/.cache/usine."""
    env = os.environ.get("XDG_CACHE_HOME")
    return (Path(env) if env else Path.home() / ".cache") / "usine"


def keep_hypothesis_cache_aside() -> None:
    """Point Hypothesis's storage (the harness draws scenario inputs with it; it caches Unicode tables there) at
    :func:`cache_dir`, unless ``HYPOTHESIS_STORAGE_DIRECTORY`` says where: by default Hypothesis writes a
    ``.hypothesis/`` folder into the working folder, and a vendor running ``usine run`` in its project found one there.
    Takes effect in a process whose Hypothesis has not used its storage yet (a command's, a benchmark's)."""
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache_dir() / "hypothesis"))
