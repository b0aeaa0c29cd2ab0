"""A payment workspace per test (``ws``): see ``tests/payments/workspace.py``; one Spark session per module (``spark``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import required
from tests.payments.workspace import Workspace

SPARK_MASTER = "local[2]"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Spark session on local[2] for the module (the engine uses the active session of its master)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        required("pyspark", "install the test extra: bash .ci/install.sh test")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        required("Java", "Spark runs on the JVM: apt-get install default-jre-headless (.ci/run does)")
    from conformity.payments.spark_engine import spark_session

    session, _ = spark_session(SPARK_MASTER, tmp_path_factory.mktemp("spark"))
    session.conf.set("spark.sql.shuffle.partitions", "2")  # a few dozen lines: one shuffle partition per core
    session.conf.set("spark.sql.files.maxPartitionBytes", "4096")  # several splits per file: line numbers across them
    yield session
    session.stop()
