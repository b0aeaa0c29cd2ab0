"""Which checks exist: those of every installed sector pack (:mod:`conformity.plugins`).

Registering them is :func:`conformity.plugins.register_all` (each pack's ``register()`` run once); :func:`registered`
is what they registered, for the catalog's cross-check.

A pack whose proofs are all documents or manual reviews registers no check; a referential naming a check no
installed pack registers is reported by ``usine validate``, and its requirements by ``usine coverage``.
"""

from __future__ import annotations

from conformity import plugins
from conformity.catalog.crosscheck import DeclaredCheck, Registered


def registered() -> Registered:
    """What the installed packs registered (each pack's ``register()`` run once): every check with its pack (the pack
    whose module holds its function), the requirement ids it declares and the scenarios it needs that none registers."""
    from conformity.checks.registry import CHECKS
    from conformity.harness.scenario import SCENARIOS

    packs = plugins.register_all()
    roots = {pid: pack.register.__module__ for pid, pack in plugins.installed().items()}

    def pack_of(module: str) -> str:
        return next((pid for pid, root in roots.items() if module == root or module.startswith(root + ".")), "")

    checks = {cid: DeclaredCheck(pack_of(c.evaluate.__module__), c.verifies,
                                 tuple(s for s in c.scenarios if s not in SCENARIOS))
              for cid, c in CHECKS.items()}
    return Registered(frozenset(packs), checks)
