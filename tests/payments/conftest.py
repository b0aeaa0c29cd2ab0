"""A payment workspace per test (``ws``): see ``tests/payments/workspace.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.payments.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)
