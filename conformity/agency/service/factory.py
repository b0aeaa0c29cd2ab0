"""The app for uvicorn's workers, built from the settings ``usine agency serve`` put in the environment."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from fastapi import FastAPI

from conformity.agency.persons import SAME_PERSON_PERIOD
from conformity.agency.service.app import create_app
from conformity.agency.service.config import ServiceConfig, WitnessConfig


def witness_from_env(env: dict[str, str]) -> WitnessConfig | None:
    """Witnessed runs, when ``usine agency serve --witness-sandbox`` offered them (the sandbox is reached now)."""
    if not env.get("witness_sandbox"):
        return None
    from conformity.harness.sandbox_access import connect

    ca = Path(env["witness_sandbox_ca"]) if env.get("witness_sandbox_ca") else None
    return WitnessConfig(sandbox=connect(env["witness_sandbox"], env["witness_token"], ca, ca_option="--witness-sandbox-ca"),
                         driver_ca=Path(env["witness_driver_ca"]) if env.get("witness_driver_ca") else None,
                         timeout=float(env.get("witness_timeout", 1800)), allow_private=env.get("witness_private") == "1")


def app_from_env() -> FastAPI:
    from conformity.agency.submit import trusted_sandbox_keys
    from conformity.catalog import load_catalog
    from conformity.checks.packs import registered
    from conformity.db.connection import Database

    env = {k.removeprefix("USINE_SERVE_").lower(): v for k, v in os.environ.items() if k.startswith("USINE_SERVE_")}
    root = os.environ.get("USINE_CATALOG") or None
    catalog = load_catalog(root, registered_checks=registered())  # the checks register: the agency re-derives verdicts
    trust = [Path(p) for p in env.get("trust", "").split(os.pathsep) if p]
    return create_app(ServiceConfig(
        database=Database(env["database"]), catalog=catalog, trust=trusted_sandbox_keys(trust),
        key_path=Path(env["key"]), data=Path(env["data"]), ledger=Path(env["ledger"]) if env.get("ledger") else None,
        max_upload=int(env.get("max_upload", 64 << 20)), secure_cookies=env.get("secure_cookies", "1") == "1",
        vendor_storage=int(env.get("vendor_storage", 2048 << 20)),
        refused_kept=dt.timedelta(days=int(env.get("refused_kept_days", 30))),
        same_person=dt.timedelta(days=int(env.get("same_person_days", SAME_PERSON_PERIOD.days))),
        witness=witness_from_env(env), server_timing=env.get("server_timing") == "1"))
