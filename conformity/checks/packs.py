"""Which checks exist: each domain pack's checks module, found by convention.

A pack folder ``referentials/<pack>/`` has its checks and scenarios registered by importing
``conformity.checks.<pack>`` (hyphens become underscores). A pack whose proofs are all documents
or manual reviews needs no module; a missing module for automated proofs shows in ``usine coverage``.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from conformity.paths import default_catalog_root


def pack_module(pack_id: str) -> str:
    return f"conformity.checks.{pack_id.replace('-', '_')}"


def load_pack_checks(root: Path | None = None) -> list[str]:
    """Import the checks module of every pack of the catalog at ``root``; the modules loaded."""
    root = Path(root) if root is not None else default_catalog_root()
    loaded = []
    for pack_file in sorted((root / "referentials").glob("*/pack.toml")):
        name = pack_module(pack_file.parent.name)
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            loaded.append(name)
    return loaded
