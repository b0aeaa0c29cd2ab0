"""Real bundles for the agency's tests: one in-process HTTPS sandbox, real harness runs, real drivers.

Four runs per test session (about 30 s on two cores; the tests that read them share a worker): the
reference vendor over the whole of 2026-W1 HOSPITAL with the evidence of its vendor.toml (labelled once
its evidence is accepted), a defective vendor over the same (refused for PRACAUTH-004), and the reference
over a few requirements with another seed and with the reference's seed (sources of validly signed traces of
other runs). Runs that only some tests need (the reference run again: another run of the same version)
are made on demand, against a sandbox on the same data folder (the same trace-signing key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity import plugins
from conformity.agency.bundlezip import ZipLimits
from conformity.catalog import Catalog, load_catalog
from conformity.checks import registered_check_ids
from conformity.harness.sandbox_access import start_local
from conformity.runs import read_seed
from conformity.signing import KeyRing
from tests.agency.helpers import (
    AGENCY,
    DEFECT,
    SUBSET,
    Runs,
    _run,
    extra_run,
    members,
)
from tests.agency.service_client import MiB, Service, make_service

plugins.register_all()  # every installed pack's checks, scenarios and mutations

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that read the session's runs share a worker (xdist group ``agency``): made once, not on each."""
    for item in items:
        if "runs" in getattr(item, "fixturenames", ()) and item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.xdist_group("agency"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(registered_checks=registered_check_ids())


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog, cda_schema: Path) -> Iterator[Runs]:
    """The bundles the agency tests judge (the reference passes DOCSHARE-001 only with the official CDA schema)."""
    root = tmp_path_factory.mktemp("agency-runs")
    with start_local(root / "sandbox") as access:
        # the runs to decide take the sandbox's seed (a run whose seed the vendor chose is never labelled); the
        # sources of other runs' traces choose theirs: another, and the reference's own (its run reproduced)
        out = {name: _run(access, catalog, root / name, vendor, only, seed)
               for name, vendor, only, seed in (("reference", "reference", (), None), ("defective", DEFECT, (), None),
                                                 ("other_seed", "reference", SUBSET, 1))}
        reference_seed = read_seed(json.loads(members(out["reference"])["manifest.json"])["seed"])
        out["rerun"] = _run(access, catalog, root / "rerun", "reference", SUBSET, reference_seed)
    keys = root / "sandbox" / "keys"
    yield Runs(out["reference"], out["defective"], out["other_seed"], out["rerun"], keys / "trace-signing.pub.pem",
               keys / "trace-signing.pem", root)


@pytest.fixture(scope="session")
def reference_again(runs: Runs, catalog: Catalog) -> Path:
    """The reference vendor's full run made again: the same software version, another run."""
    return extra_run(runs, catalog, "reference-again")


@pytest.fixture(scope="session")
def trust(runs: Runs) -> KeyRing:
    return KeyRing.from_paths([runs.trust])


# ---------------------------------------------------------------------------------------------- CLI and registry
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private USINE_HOME, with the agency's key in place."""
    h = tmp_path / "home"
    monkeypatch.setenv("USINE_HOME", str(h))
    for var in ("USINE_REGISTRY", "USINE_TRUSTED_SANDBOX_KEYS", "USINE_AGENCY_PUBKEY"):
        monkeypatch.delenv(var, raising=False)
    AGENCY.save(h / "agency" / "agency-key.pem")
    return h


@pytest.fixture
def service(database_target: Path | str, runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> Iterator[Service]:
    s = make_service(database_target, runs, catalog, home, tmp_path)
    yield s
    s.config.database.dispose()


@pytest.fixture
def sqlite_service(runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> Iterator[Service]:
    s = make_service(tmp_path / "registry.sqlite3", runs, catalog, home, tmp_path, max_upload=2 * MiB,
                     zip_limits=ZipLimits(max_member_bytes=8 * MiB, max_total_bytes=16 * MiB))
    yield s
    s.config.database.dispose()
