"""Which checks exist: those of every installed sector pack (:mod:`conformity.plugins`).

A pack whose proofs are all documents or manual reviews registers no check; a referential naming a check no
installed pack registers is reported by ``usine validate``, and its requirements by ``usine coverage``.
"""

from __future__ import annotations

from pathlib import Path

from conformity import plugins


def load_pack_checks(root: Path | None = None) -> list[str]:
    """Register the checks, scenarios and mutations of every installed pack; the packs' ids.

    ``root`` (the catalog being read) is accepted for the callers that know it: the installed packs are the same
    whatever the catalog.
    """
    return list(plugins.register_all())
