"""Helpers shared by every test area."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def required(what: str, how: str) -> NoReturn:
    """Skip a test that needs a real part absent here (saying how to get it); FAIL it when CI=true."""
    message = f"{what} is absent: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
