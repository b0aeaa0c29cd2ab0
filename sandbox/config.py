"""Sandbox settings."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How one sandbox instance runs: where it keeps state, its admin token, its limits."""

    data_dir: Path
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    max_body_bytes: int = 2 * 1024 * 1024
    max_xml_bytes: int = 1024 * 1024
    max_xml_depth: int = 64
    #: official schemas the packs' services also validate against, by the name a pack declares (sandbox.schemas)
    schemas: Mapping[str, Path] = field(default_factory=dict)
    slow_seconds: float = 1.5
    access_token_ttl: int = 600
    installation_event_source: str = "urn:usine:sandbox"
    seal_every: int = 1000  # events per signed segment at most
    seal_seconds: float = 60.0  # events wait at most this long for their segment

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sandbox.sqlite3"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events" / "data-received.jsonl"

    @property
    def trace_key_path(self) -> Path:
        return self.data_dir / "keys" / "trace-signing.pem"

    @property
    def infrastructure_key_path(self) -> Path:
        """The key that signs event segments (the infrastructure's, not the trace key)."""
        return self.data_dir / "keys" / "infrastructure-signing.pem"

    @property
    def infrastructure_keys_path(self) -> Path:
        """The published infrastructure keys document (also served at /.well-known/usine-infrastructure-keys)."""
        return self.data_dir / "keys" / "infrastructure-keys.json"

    @property
    def idp_key_path(self) -> Path:
        return self.data_dir / "keys" / "idp-signing.json"
