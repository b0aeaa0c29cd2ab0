"""The agency's service as the tests use it: in process (``Service``, with its accounts) or under uvicorn (``Served``)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi.testclient import TestClient

from conformity.agency.registry import Registry
from conformity.agency.service import ServiceConfig, accounts, create_app
from conformity.catalog import Catalog
from conformity.db.connection import Database
from conformity.signing import KeyRing
from sandbox.server import bound_socket
from tests.agency.helpers import Runs

PASSWORD = "correct horse battery staple"
VENDOR = "usine-reference"
MiB = 1024 * 1024


def csrf_of(page: str) -> str:
    """The CSRF token of the first form of a page."""
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


@dataclass
class Service:
    app: object
    config: ServiceConfig
    token: str                  # the reference vendor's API token
    other_token: str            # another vendor's

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="https://testserver", follow_redirects=False)  # type: ignore[arg-type]

    def vendor(self, token: str | None = None) -> TestClient:
        c = self.client()
        c.headers["Authorization"] = f"Bearer {token or self.token}"
        return c

    def staff(self, login: str) -> tuple[TestClient, str]:
        """A signed-in client and its CSRF token."""
        c = self.client()
        form = c.get("/login")
        csrf = csrf_of(form.text)
        r = c.post("/login", data={"login": login, "password": PASSWORD, "csrf": csrf, "next": "/staff"})
        assert r.status_code == 303, r.text
        page = c.get("/staff")
        return c, csrf_of(page.text)

    def table(self, sql: str) -> list[tuple[object, ...]]:
        with Registry(self.config.database) as reg:
            return [tuple(r) for r in reg.db.execute(sql).fetchall()]


def make_service(target: Path | str, runs: Runs, catalog: Catalog, home: Path, tmp_path: Path, **extra: object) -> Service:
    config = ServiceConfig(database=Database(target), catalog=catalog, trust=KeyRing.from_paths([runs.trust]),
                           key_path=home / "agency" / "agency-key.pem", data=tmp_path / "service", background=False,
                           **extra)  # type: ignore[arg-type]
    app = create_app(config)
    with Registry(config.database) as reg:
        for login, role in (("alice", "reviewer"), ("bob", "reviewer"), ("dora", "decider")):
            accounts.create_account(reg.db, login, login.capitalize(), role, password=PASSWORD)
        ref = accounts.create_account(reg.db, "ref", "Reference vendor", "vendor", vendor_id=VENDOR, password=PASSWORD)
        acme = accounts.create_account(reg.db, "acme", "ACME", "vendor", vendor_id="acme")
        return Service(app, config, accounts.create_token(reg.db, ref, "ci"), accounts.create_token(reg.db, acme, "ci"))


def upload(client: TestClient, bundle: Path) -> dict[str, object]:
    r = client.post("/api/v1/submissions", params={"name": bundle.name}, content=bundle.read_bytes(),
                    headers={"Content-Type": "application/zip"})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/v1/submissions/{r.json()['id']}"
    return r.json()  # type: ignore[no-any-return]


class Served:
    """The real app under uvicorn on a loopback port, in a thread, until closed."""

    def __init__(self, config: ServiceConfig):
        sock = bound_socket("127.0.0.1")  # the port ours from the start (one chosen, then bound, raced others)
        self.port = int(sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the service did not start"
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
