"""The sandbox side of sector packs: each installed pack's services, faults, fixtures and OpenID Connect profile.

A pack's sandbox module (``SectorPack.sandbox``) defines ``SERVICES`` (URL name → module with a ``router``, and
optionally a ``prod_router``, a ``setup(app)``, ``NETWORK_METHODS`` and ``LEAN_ROUTES``: its busiest routes served
without FastAPI's machinery, :func:`sandbox.app.lean_routes`), ``FAULTS`` (service → fault name →
:class:`~sandbox.faults.Fault`), ``fixtures(seed, **options)``, ``OIDC`` (an
:class:`~sandbox.oidc_profile.OidcProfile`, or None) and ``DIRECTORIES`` (the core's directory service configured:
:class:`~sandbox.services.directory.DirectoryProfile` each, mounted as services of the pack with the directory's
faults) and ``SCHEMAS`` (the official schemas its services can validate against:
:class:`~sandbox.schemas.OfficialSchema` each). The sandbox framework reads them here and nowhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from conformity import plugins
from sandbox.oidc_profile import OidcProfile
from sandbox.schemas import OfficialSchema
from sandbox.services import directory


@dataclass(frozen=True, slots=True)
class SandboxPack:
    """One pack's sandbox part."""

    id: str
    module: ModuleType

    @property
    def directories(self) -> tuple[directory.DirectoryProfile, ...]:
        return tuple(getattr(self.module, "DIRECTORIES", ()))

    @property
    def services(self) -> Mapping[str, Any]:
        """URL name → service module (``router``…): the pack's own, then its directories."""
        own: dict[str, Any] = dict(getattr(self.module, "SERVICES", {}))
        return own | {d.service: _directory_service(d) for d in self.directories}

    @property
    def schemas(self) -> tuple[OfficialSchema, ...]:
        return tuple(getattr(self.module, "SCHEMAS", ()))

    @property
    def faults(self) -> Mapping[str, Mapping[str, Any]]:
        return {d.service: d.faults for d in self.directories} | dict(getattr(self.module, "FAULTS", {}))

    @property
    def oidc(self) -> OidcProfile | None:
        return getattr(self.module, "OIDC", None)

    def fixtures(self, seed: int, **options: Any) -> dict[str, Any]:
        return dict(self.module.fixtures(seed, **options))

    def service_names(self) -> tuple[str, ...]:
        """Every service a session of this pack has: its provider first, then its own."""
        return ((self.oidc.service,) if self.oidc else ()) + tuple(self.services)


@functools.cache
def _directory_service(profile: directory.DirectoryProfile) -> directory.DirectoryService:
    """One router per directory profile, however often the services are listed."""
    return directory.service(profile)


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


def services() -> dict[str, Any]:
    """Every pack service module by URL name (not the providers: the core mounts those once per profile)."""
    return {name: module for p in packs().values() for name, module in p.services.items()}


def schemas() -> dict[str, OfficialSchema]:
    """Every official schema an installed pack's services can validate against, by name."""
    out: dict[str, OfficialSchema] = {}
    owner: dict[str, str] = {}
    for p in packs().values():
        for schema in p.schemas:
            if schema.name in out:
                raise ValueError(f"schema {schema.name!r} of pack {p.id} is already pack {owner[schema.name]}'s")
            out[schema.name], owner[schema.name] = schema, p.id
    return out


def profiles() -> dict[str, OidcProfile]:
    """Every pack's OpenID Connect profile, by the provider's URL name."""
    return {p.oidc.service: p.oidc for p in packs().values() if p.oidc is not None}


def pack_of(pack_id: str) -> SandboxPack:
    try:
        return packs()[pack_id]
    except KeyError:
        raise KeyError(f"no sandbox for pack {pack_id!r} (packs: {', '.join(packs())})") from None
