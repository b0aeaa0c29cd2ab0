"""Helpers shared by every test area."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest


def required(what: str, how: str) -> NoReturn:
    """Skip a test that needs a real part absent here (saying how to get it); FAIL it when CI=true."""
    message = f"{what} is absent: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@contextmanager
def port_in_use(host: str = "127.0.0.1") -> Iterator[int]:
    """A port another socket listens on while the block runs (a server given it must refuse it)."""
    with socket.socket() as held:
        held.bind((host, 0))
        held.listen()
        yield held.getsockname()[1]
