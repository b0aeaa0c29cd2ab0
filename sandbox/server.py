"""Run the sandbox on a real uvicorn server: in a background thread (harness, tests) or in the foreground."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from sandbox.app import create_app
from sandbox.config import SandboxConfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def uvicorn_config(config: SandboxConfig, host: str, port: int, tls_cert: Path | None = None,
                   tls_key: Path | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config), host=host, port=port, log_level="warning", access_log=False,
        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        limit_concurrency=1000, timeout_keep_alive=5, lifespan="on",
    )


@dataclass
class RunningSandbox:
    """A sandbox served by uvicorn in a background thread of this process."""

    config: SandboxConfig
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def admin_token(self) -> str:
        return self.config.admin_token

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(config: SandboxConfig, *, host: str = "127.0.0.1", port: int = 0,
                    tls_cert: Path | None = None, tls_key: Path | None = None, timeout: float = 15.0) -> RunningSandbox:
    """Start a real uvicorn server on ``host:port`` (0: a free port) and wait until it serves."""
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn_config(config, host, port, tls_cert, tls_key))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name=f"usine-sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"sandbox did not start on {host}:{port}")
        time.sleep(0.02)
    scheme = "https" if tls_cert else "http"
    return RunningSandbox(config, f"{scheme}://{host}:{port}", server, thread)
