"""What one agency service needs: its database, catalog, trusted sandbox keys, signing key and limits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conformity.agency.bundlezip import DEFAULT_LIMITS, ZipLimits
from conformity.agency.persons import SAME_PERSON_PERIOD
from conformity.catalog import Catalog
from conformity.db.connection import Database
from conformity.signing import KeyRing

if TYPE_CHECKING:
    from conformity.harness.sandbox_access import SandboxAccess

MiB = 1024 * 1024


@dataclass(slots=True)
class WitnessConfig:
    """Witnessed runs: the agency's own sandbox (its trace key among ``ServiceConfig.trust``) and the bounds."""

    sandbox: SandboxAccess             # the agency's sandbox, with its admin token (harness tokens are minted per run)
    driver_ca: Path | None = None      # trust anchors for vendors' driver endpoints, beside the system's
    timeout: float = 1800.0            # a whole run, in seconds (checked between scenarios)
    call_timeout: float = 30.0         # one driver call, in seconds
    allow_private: bool = False        # driver endpoints on loopback or private addresses (tests, one-site setups)


@dataclass(slots=True)
class ServiceConfig:
    """The service's settings (built by ``usine agency serve`` or a test)."""

    database: Database                 # the registry (SQLite file or PostgreSQL URL)
    catalog: Catalog                   # referentials and waves, with checks registered (verdicts are re-derived)
    trust: KeyRing                     # the sandbox keys whose traces the agency trusts
    key_path: Path                     # the agency's signing key (labels, revocation list, export)
    data: Path                         # uploads in progress and decision files
    ledger: Path | None = None         # a payment ledger, for the progress funnel (optional)
    max_upload: int = 64 * MiB         # the largest bundle accepted, in bytes
    uploads_in_flight: int = 3         # a vendor's uploads received and not yet verified (one more: 429)
    vendor_storage: int = 2048 * MiB   # the bytes of one vendor's uploads the agency keeps (more: 413)
    #: how long the bundle of a refused upload is kept (for the vendor and the agency to look into), then deleted
    refused_kept: dt.timedelta = dt.timedelta(days=30)
    zip_limits: ZipLimits = DEFAULT_LIMITS
    #: how long an account and the admin who set its password count as one person (four-eyes; agency.persons)
    same_person: dt.timedelta = SAME_PERSON_PERIOD
    secure_cookies: bool = True        # cookies only over HTTPS (browsers also send them to http://localhost)
    session_idle: dt.timedelta = dt.timedelta(minutes=30)
    session_max: dt.timedelta = dt.timedelta(hours=8)
    login_window: dt.timedelta = dt.timedelta(minutes=15)
    login_max_failures: int = 5        # per login within the window
    client_max_failures: int = 20      # per client address within the window
    background: bool = True            # verify uploads after answering (False: before, e.g. in benchmarks)
    #: a verification's lease: the worker verifying an upload renews it every third of it; an upload left verifying
    #: past it (its worker killed) is taken up again by any worker's sweep, run as often
    verify_lease: dt.timedelta = dt.timedelta(minutes=2)
    webhooks: bool = True              # send due webhook deliveries from this worker
    witness: WitnessConfig | None = None  # witnessed runs offered (None: not by this agency)
    server_timing: bool = False        # say in each answer how long the app took (Server-Timing), for benchmarks
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def uploads(self) -> Path:
        return self.data / "uploads"

    @property
    def decisions(self) -> Path:
        return self.data / "decisions"
