"""The one defect a defective vendor switches on (environment variable HOMEAPP_DEFECT).

Each name is one realistic mistake at one precise place of the code; the harness must refuse the software for
exactly the requirements its ``expected.toml`` lists. The reference runs with none.
"""

from __future__ import annotations

import os

KNOWN: dict[str, str] = {}


def register(name: str, description: str) -> str:
    KNOWN[name] = description
    return name


def active(name: str) -> bool:
    if name not in KNOWN:
        raise KeyError(f"unknown defect {name!r}")
    return os.environ.get("HOMEAPP_DEFECT", "") == name


def check_environment() -> None:
    """Refuse to start with an unknown defect name (a typo would silently test the reference)."""
    wanted = os.environ.get("HOMEAPP_DEFECT", "")
    if wanted and wanted not in KNOWN:
        raise SystemExit(f"homeapp: unknown HOMEAPP_DEFECT {wanted!r} (known: {', '.join(sorted(KNOWN))})")
