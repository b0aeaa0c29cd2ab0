"""How the harness reaches a sandbox: one it starts in this process, or a running one by URL."""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conformity.errors import UsineError


class SandboxUnavailable(UsineError):
    """The sandbox could not be started or reached."""


@dataclass
class SandboxAccess:
    """A sandbox's base URL, admin token, and the TLS trust anchors the software needs."""

    base_url: str
    admin_token: str
    ca_certificates: list[str] = field(default_factory=list)
    untrusted_base_url: str | None = None
    verify: str | bool = True
    _stoppers: list[Any] = field(default_factory=list)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.admin_token}"},
                            timeout=60, verify=self.verify)

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            stop()
        self._stoppers.clear()

    def __enter__(self) -> SandboxAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_local(data_dir: Path | None = None, *, tls: bool = True) -> SandboxAccess:
    """Start the sandbox in this process on real uvicorn servers.

    With ``tls``: the main server on HTTPS with a certificate of a local test CA (given to the
    software as its trust anchor), and a second HTTPS listener on an untrusted certificate for the
    scenarios that check the software refuses it. Both serve the same app and state.
    """
    import uvicorn

    from sandbox.app import create_app
    from sandbox.config import SandboxConfig
    from sandbox.server import RunningSandbox, free_port
    from sandbox.tls import make_test_pki

    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="usine-run-")
        data_dir = Path(tmp.name)
    config = SandboxConfig(data_dir=data_dir, admin_token=secrets.token_urlsafe(24))
    app = create_app(config)
    access = SandboxAccess(base_url="", admin_token=config.admin_token)

    def serve(cert: Path | None, key: Path | None) -> str:
        import threading
        import time

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False, ssl_certfile=str(cert) if cert else None,
                                               ssl_keyfile=str(key) if key else None, lifespan="off"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SandboxUnavailable("the in-process sandbox did not start")
            time.sleep(0.02)
        access._stoppers.append(RunningSandbox(config, "", server, thread).stop)
        return f"{'https' if cert else 'http'}://127.0.0.1:{port}"

    if tls:
        pki = make_test_pki(data_dir / "pki")
        access.base_url = serve(pki.server_cert, pki.server_key)
        access.untrusted_base_url = serve(pki.untrusted_cert, pki.untrusted_key)
        access.ca_certificates = [Path(pki.ca_cert).read_text()]
        access.verify = str(pki.ca_cert)
    else:
        access.base_url = serve(None, None)
    access._stoppers.append(app.state.store.close)
    if tmp is not None:
        access._stoppers.insert(0, tmp.cleanup)
    return access


def connect(url: str, admin_token: str, ca_file: Path | None = None) -> SandboxAccess:
    """Use a sandbox already running at ``url``."""
    verify: str | bool = str(ca_file) if ca_file else True
    access = SandboxAccess(base_url=url.rstrip("/"), admin_token=admin_token,
                           ca_certificates=[ca_file.read_text()] if ca_file else [], verify=verify)
    try:
        with access.admin() as c:
            c.get("/health").raise_for_status()
    except httpx.HTTPError as exc:
        raise SandboxUnavailable(f"cannot reach the sandbox at {url}: {exc}") from exc
    return access
