"""Sector packs as plug-ins: what a pack is, and how the core finds the installed ones.

A pack registers one object under the ``usine.packs`` entry point group (``pyproject.toml``)::

    [project.entry-points."usine.packs"]
    mypack = "mypack:PACK"

and brings the same inner shape every time: its data (``referentials/<pack>/``, its waves), its checks,
scenarios and trace mutations (registered by ``register()``), its sandbox services (the module named by
``sandbox``), its vendors. The core knows no pack by name: the packs shipped with usine are loaded exactly
like a third-party one, from the installed distributions' metadata.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from conformity.errors import InputError

GROUP = "usine.packs"


@dataclass(frozen=True, slots=True)
class SectorPack:
    """A sector pack: its id (the folder ``referentials/<id>/``) and the hooks the core calls."""

    id: str
    #: import the pack's checks, scenarios and trace mutations (registration happens at import)
    register: Callable[[], None]
    #: the module holding the pack's sandbox services (``SERVICES``, ``FAULTS``, ``fixtures``, ``OIDC``), if any
    sandbox: str | None = None
    #: what the software under test knows locally, from a session's fixtures (never what the services must tell)
    driver_fixtures: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=lambda fixtures: {})
    #: the driver action that logs a user in (the specification's "who is logged in" convention)
    login_action: str = ""
    #: who a driver logs in when a scenario needs a session before any login action, as the specification words
    #: it (e.g. "the first fixture user"); empty: "the first account of the fixtures"
    first_account: str = ""
    #: other actions that need no logged-in user (raw connections…)
    sessionless: tuple[str, ...] = ()
    #: the driver conventions particular to this pack (title, text): its fixtures, who logs in first
    conventions: tuple[tuple[str, str], ...] = ()
    #: a folder holding this pack's ``referentials/<id>/`` and ``waves/`` when the pack travels in its own
    #: distribution (None: the pack's data is in the main catalog)
    data: Path | None = None


def _load(name: str, value: str, load: Callable[[], Any]) -> SectorPack:
    try:
        pack = load()
    except Exception as exc:  # a broken plug-in is named, not a traceback
        raise InputError(
            f"sector pack {name!r} ({value}) failed to load: {type(exc).__name__}: {exc}",
            where=f"entry point group {GROUP}",
        ) from exc
    if not isinstance(pack, SectorPack) or pack.id != name:
        raise InputError(
            f"entry point {name!r} ({value}) is not the SectorPack of pack {name!r}", where=f"entry point group {GROUP}"
        )
    if not callable(pack.register):
        raise InputError(f"sector pack {name!r} ({value}): its register hook is not callable ({pack.register!r})",
                         where=f"entry point group {GROUP}")
    return pack


def _distribution(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


@functools.cache
def installed() -> dict[str, SectorPack]:
    """Every installed pack by id, from the ``usine.packs`` entry point group (sorted by id). Two installed
    distributions registering the same pack id: an error naming both (which one won would depend on the order in
    which Python finds them)."""
    eps = list(entry_points(group=GROUP))
    by_name: dict[str, list[Any]] = {}
    for ep in eps:
        by_name.setdefault(ep.name, []).append(ep)
    twice = {name: found for name, found in by_name.items() if len({(e.value, _distribution(e)) for e in found}) > 1}
    if twice:
        raise InputError("; ".join(f"sector pack {name!r} is registered by several installed distributions: "
                                   + ", ".join(f"{e.value} ({_distribution(e)})" for e in found)
                                   for name, found in sorted(twice.items())) + " — uninstall all but one",
                         where=f"entry point group {GROUP}")
    found = {name: _load(name, group[0].value, group[0].load) for name, group in by_name.items()}
    return dict(sorted(found.items()))


def _stale_metadata() -> list[Path]:
    """``*.egg-info`` folders beside the package: left by an old ``setup.py`` install, they shadow the entry points."""
    return sorted(Path(__file__).resolve().parent.parent.glob("*.egg-info"))


def get(pack_id: str) -> SectorPack:
    try:
        return installed()[pack_id]
    except KeyError:
        hint = "; reinstall usine (`pip install -e .`) so its entry points are registered"
        stale = _stale_metadata()
        if stale:
            hint += f"; {stale[0]} is stale package metadata that hides them: delete it"
        raise InputError(
            f"no installed sector pack {pack_id!r} (installed: {', '.join(installed()) or 'none'}){hint}",
            where=f"entry point group {GROUP}",
        ) from None


@functools.cache
def register_all() -> tuple[str, ...]:
    """Register every installed pack's checks, scenarios and mutations (once); the packs' ids."""
    for pack in installed().values():
        try:
            pack.register()
        except Exception as exc:  # a broken plug-in is named, not a traceback
            raise InputError(f"sector pack {pack.id!r} failed to register its checks, scenarios and mutations: "
                             f"{type(exc).__name__}: {exc}", where=f"{pack.register.__module__}.register()") from exc
    return tuple(installed())


def sandbox_module(pack: SectorPack) -> Any | None:
    """The pack's sandbox services module, imported (None when the pack has no services)."""
    return importlib.import_module(pack.sandbox) if pack.sandbox else None
