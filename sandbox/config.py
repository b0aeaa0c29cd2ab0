"""Sandbox settings."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: threads each served event loop of a PostgreSQL-backed sandbox hands blocking work to, unless told
#: (:meth:`SandboxConfig.loop_threads`)
THREADS = 4


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
    #: seconds an injected 429/503 announces in Retry-After when the session's fault does not say (HTTP allows whole
    #: seconds only: 1 is the shortest wait that still proves the software waits as told)
    retry_after: int = 1
    access_token_ttl: int = 600
    #: seconds a test session is served after it was created (then 410 ``session-expired``), and counts among its
    #: vendor's live sessions unless closed before: a scenario lasts seconds to minutes, and a session left open by a
    #: harness that stopped would otherwise be served, and count, for ever
    session_ttl: int = 6 * 3600
    #: seconds a session's data (its trace, documents, messages, tokens) is kept after it expired: then swept
    session_retention: int = 7 * 86400
    #: seconds between two sweeps of the sessions past their retention (each worker sweeps; they take turns)
    sweep_seconds: float = 600.0
    #: what one vendor (a harness token's vendor and software) may hold of the sandbox every vendor of a wave shares:
    #: its live sessions (open, unexpired; the runner drives 6 at once), and the runs it creates in an hour and a day
    #: (beyond: 429 with Retry-After). The admin token is not bounded.
    vendor_live_sessions: int = 32
    vendor_runs_per_hour: int = 30
    vendor_runs_per_day: int = 200
    #: bytes one session may make the sandbox keep (its trace's exchanges, its documents and messages); beyond, its
    #: requests and notes are refused 413 ``session-recording-full``, unrecorded. 64 MiB: the agency's largest bundle
    #: by default (``--max-upload-mib``), so a trace past it could not be submitted anyway, and an export (read and
    #: signed in memory) stays bounded
    session_recorded_bytes: int = 64 * 1024 * 1024
    #: bytes one vendor's sessions may make the sandbox keep until they are swept; beyond, it opens no session (429)
    vendor_recorded_bytes: int = 4 * 1024 * 1024 * 1024
    installation_event_source: str = "urn:usine:sandbox"
    seal_every: int = 1000  # events per signed segment at most
    seal_seconds: float = 60.0  # events wait at most this long for their segment
    #: the shared store: a ``postgresql://`` URL (several worker processes), or None for SQLite in ``data_dir``
    database: str | None = None
    #: worker processes serving the test sessions (more than one needs ``database``)
    workers: int = 1
    #: threads each served event loop hands blocking work to (:meth:`loop_threads`; None: the store's default)
    threads: int | None = None

    def loop_threads(self) -> int | None:
        """The threads each served event loop hands blocking work to (``sandbox.app.limit_threads``): those given;
        else :data:`THREADS` on PostgreSQL, where every store call is a round trip in a thread (anyio's default of 40
        cost a quarter more CPU a request, measured); else None, anyio's default — on SQLite the store's calls run on
        the loop, threads serve plain-function routes only, and 40 keep those answering on a busy loop
        (``tests/sandbox/test_accept_fairness.py``: with 4, a burst of fresh connections to the liveness route waited
        its turn for a thread)."""
        if self.threads is not None:
            return self.threads
        return THREADS if self.database else None

    def to_json(self) -> dict[str, object]:
        """The settings as JSON (what a worker process is started with)."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            elif name == "schemas":
                value = {k: str(v) for k, v in value.items()}
            out[name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SandboxConfig:
        values = dict(data)
        values["data_dir"] = Path(str(values["data_dir"]))
        schemas = values.get("schemas") or {}
        if not isinstance(schemas, dict):
            raise ValueError(f"sandbox settings: schemas must be an object, not {type(schemas).__name__}")
        values["schemas"] = {str(k): Path(str(v)) for k, v in schemas.items()}
        return cls(**values)  # type: ignore[arg-type]  # values as to_json wrote them

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
