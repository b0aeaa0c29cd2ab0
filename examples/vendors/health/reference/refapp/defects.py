"""The one defect a defective vendor switches on (environment variable REFAPP_DEFECT).

Each name is one realistic mistake at one precise place of the code; the harness must refuse the
software for the right requirement. The reference vendor runs with no defect.
"""

from __future__ import annotations

import os

KNOWN: dict[str, str] = {}


def register(name: str, description: str) -> str:
    """Declare a defect name (modules declare theirs at import) and return it."""
    KNOWN[name] = description
    return name


def active(name: str) -> bool:
    """Whether this run has the defect ``name`` switched on."""
    if name not in KNOWN:
        raise KeyError(f"unknown defect {name!r}")
    return os.environ.get("REFAPP_DEFECT", "") == name


def check_environment() -> None:
    """Refuse to start with an unknown defect name (a typo would silently test the reference)."""
    wanted = os.environ.get("REFAPP_DEFECT", "")
    if wanted and wanted not in KNOWN:
        raise SystemExit(f"refapp: unknown REFAPP_DEFECT {wanted!r} (known: {', '.join(sorted(KNOWN))})")
