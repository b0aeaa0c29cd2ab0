"""The sandbox side of sector packs: each installed pack's services, faults, fixtures and OpenID Connect profile.

A pack's sandbox module (``SectorPack.sandbox``) defines ``SERVICES`` (URL name → module with a ``router``, and
optionally a ``prod_router``, a ``setup(app)`` and ``NETWORK_METHODS``), ``FAULTS`` (service → fault name →
:class:`~sandbox.faults.Fault`), ``fixtures(seed, **options)`` and ``OIDC`` (an
:class:`~sandbox.oidc_profile.OidcProfile`, or None). The sandbox framework reads them here and nowhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from conformity import plugins
from sandbox.oidc_profile import OidcProfile


@dataclass(frozen=True, slots=True)
class SandboxPack:
    """One pack's sandbox part."""

    id: str
    module: ModuleType

    @property
    def services(self) -> Mapping[str, ModuleType]:
        return dict(getattr(self.module, "SERVICES", {}))

    @property
    def faults(self) -> Mapping[str, Mapping[str, Any]]:
        return dict(getattr(self.module, "FAULTS", {}))

    @property
    def oidc(self) -> OidcProfile | None:
        return getattr(self.module, "OIDC", None)

    def fixtures(self, seed: int, **options: Any) -> dict[str, Any]:
        return dict(self.module.fixtures(seed, **options))

    def service_names(self) -> tuple[str, ...]:
        """Every service a session of this pack has: its provider first, then its own."""
        return ((self.oidc.service,) if self.oidc else ()) + tuple(self.services)


@functools.cache
def packs() -> dict[str, SandboxPack]:
    """Every installed pack that has sandbox services, by id."""
    out = {}
    for pack in plugins.installed().values():
        module = plugins.sandbox_module(pack)
        if module is not None:
            out[pack.id] = SandboxPack(pack.id, module)
    names: dict[str, str] = {}
    for p in out.values():
        for name in p.service_names():
            if name in names or name in ("admin", "trace", "prod"):
                raise ValueError(f"sandbox service {name!r} of pack {p.id} is already {names.get(name, 'the core')}'s")
            names[name] = p.id
    return out


def services() -> dict[str, ModuleType]:
    """Every pack service module by URL name (not the providers: the core mounts those once per profile)."""
    return {name: module for p in packs().values() for name, module in p.services.items()}


def profiles() -> dict[str, OidcProfile]:
    """Every pack's OpenID Connect profile, by the provider's URL name."""
    return {p.oidc.service: p.oidc for p in packs().values() if p.oidc is not None}


def pack_of(pack_id: str) -> SandboxPack:
    try:
        return packs()[pack_id]
    except KeyError:
        raise KeyError(f"no sandbox for pack {pack_id!r} (packs: {', '.join(packs())})") from None
