"""A real sandbox served by uvicorn in a thread, and helpers to open test sessions on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.store import PostgresStore, Store
from tests.sandbox.helpers import ADMIN_TOKEN, create_session


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    data = tmp_path_factory.mktemp("sandbox")
    with start_in_thread(SandboxConfig(data_dir=data, admin_token=ADMIN_TOKEN)) as running:
        yield running


@pytest.fixture(scope="session")
def admin(sandbox_server: RunningSandbox) -> Iterator[httpx.Client]:
    """An httpx client on the admin API."""
    with httpx.Client(base_url=sandbox_server.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=30) as client:
        yield client


@pytest.fixture
def new_session(admin: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Create a test session: ``new_session(seed=1)`` → the admin API's session view."""

    def make(seed: int = 1, **extra: Any) -> dict[str, Any]:
        return create_session(admin, seed, **extra)

    return make


@pytest.fixture(scope="session")
def mint(sandbox_server: RunningSandbox) -> Callable[..., str]:
    """Put an access token for a session straight into the sandbox's store (no identity provider needed)."""
    from sandbox.packs.health.samples import issue_access_token

    def make(session: dict[str, Any], national_id: str | None = None) -> str:
        sub = national_id or session["fixtures"]["practitioners"][0]["national_id"]
        return issue_access_token(sandbox_server.server.config.app.state.store, session["session_id"], sub)

    return make


@pytest.fixture
def client(sandbox_server: RunningSandbox) -> Iterator[httpx.Client]:
    """An httpx client with no credentials, on the sandbox's base URL."""
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as c:
        yield c


def data_dir(server: RunningSandbox) -> Path:
    return server.config.data_dir


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two handles on one store (two connections, as two worker processes have: what one writes, the other must read
    committed), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        pair = (Store(tmp_path / "sandbox.sqlite3"), Store(tmp_path / "sandbox.sqlite3"))
    else:
        url = request.getfixturevalue("postgresql_url")
        pair = (PostgresStore(url), PostgresStore(url))
    yield pair
    for store in pair:
        store.close()
