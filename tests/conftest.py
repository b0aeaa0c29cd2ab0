"""Shared fixtures: paths to the embedded catalog and to the official third-party schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformity.paths import SOURCE_ROOT, shared_schemas_dir


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return SOURCE_ROOT


@pytest.fixture(scope="session")
def official_schemas() -> Path:
    """../shared/schemas, or skip when it is absent."""
    found = shared_schemas_dir()
    if found is None:
        pytest.skip("official schemas (../shared/schemas) are absent")
    return found
