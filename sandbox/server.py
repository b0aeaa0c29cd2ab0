"""Run the sandbox on a real uvicorn server: in a background thread (harness, tests) or in the foreground."""

from __future__ import annotations

import atexit
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import httpx
import uvicorn
from fastapi import FastAPI

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.tls import LISTENER_CLASSES, TestPKI, server_context, serves_as_said


@contextmanager
def child_server(command: Callable[[int], Sequence[str]], up: Callable[[int], bool], *, timeout: float,
                 env: Mapping[str, str] | None = None, log: IO[bytes] | None = None, interval: float = 0.1,
                 host: str = "127.0.0.1", attempts: int = 3,
                 cwd: Path | None = None) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A server run as a child process on a free port (e.g. ``usine sandbox serve --port N``: ``command(N)``, run in
    ``cwd``), yielded with its port once ``up(port)`` answers true (an OSError or HTTP error meanwhile counts as not
    yet); its output goes to ``log``. Terminated on exit, killed when it does not stop within 30 s.

    The port is free when chosen, not reserved: until the child binds it, another process may take it (an outgoing
    connection's ephemeral port, another server). A child that exits before answering is started again on another
    port, ``attempts`` times in all; RuntimeError when the last exits, or when one is not up within ``timeout``."""
    for attempt in range(1, attempts + 1):
        port = free_port(host)
        process = subprocess.Popen(list(command(port)), env=None if env is None else dict(env), stdout=log,
                                   stderr=subprocess.STDOUT if log is not None else None, cwd=cwd)
        try:
            deadline = time.monotonic() + timeout
            while not _answers(up, port):
                if process.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")
                time.sleep(interval)
            else:
                yield process, port
                return
        finally:
            _end(process)
        if attempt == attempts:
            raise RuntimeError(f"the server exited (status {process.returncode}) before it answered, "
                               f"{attempts} times (each on another free port)")
    raise AssertionError("unreachable")  # pragma: no cover


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _answers(up: Callable[[int], bool], port: int) -> bool:
    try:
        return up(port)
    except (OSError, httpx.HTTPError):  # not listening yet, or TLS not ready (ssl.SSLError is an OSError)
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now (for a child process to bind: see :func:`child_server`); in this process, serve on a
    :func:`bound_socket` instead, which holds its port from the start."""
    with socket.socket(_family(host)) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def bound_socket(host: str, port: int = 0) -> socket.socket:
    """A listening socket's first half: bound to ``host:port`` (0: a port the system chooses, ours from then on),
    for a server started in this process (``uvicorn.Server.run(sockets=[...])``). Choosing a free port and binding
    it later raced anything else on the machine that binds or connects meanwhile. A TCP socket by its protocol too
    (``IPPROTO_TCP``, not 0): asyncio sets TCP_NODELAY only on the connections of such a socket, and without it a
    response written in two parts waits for the client's delayed ACK, 40 ms a request."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


#: the event loop the sandbox serves on: asyncio's. uvloop's libuv accepts one new connection per turn of the loop
#: (libuv >= 1.45, "don't accept() connections in a loop"): while the established connections keep the loop busy,
#: the n-th vendor connecting waits n turns — measured, 250 vendor sessions opening within 0.1 s on a busy sandbox:
#: first answers 1-25 s late, while their later requests took 0.2 s. asyncio accepts every pending connection (up
#: to the listen backlog) each turn; with httptools' parser the rest of a request costs the same on both (1.8-2.0 ms
#: a submission, alternating runs at load 7-10).
SERVER_LOOP: Literal["asyncio"] = "asyncio"

#: seconds an idle connection is kept open; clients that keep theirs longer race the close (the harness keeps its for
#: less: :data:`conformity.harness.sandbox_access.ADMIN_KEEP_ALIVE_S`)
KEEP_ALIVE_S = 5


def uvicorn_config(app: FastAPI, host: str, port: int, tls_cert: Path | None = None, tls_key: Path | None = None,
                   *, context: ssl.SSLContext | None = None, lifespan: Literal["auto", "on", "off"] = "on",
                   configure_logging: bool = True) -> uvicorn.Config:
    """A server config; ``configure_logging`` False for listeners added to a running one (uvicorn would set its
    loggers up again while the first server logs)."""
    extra: dict[str, object] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, **extra,  # type: ignore[arg-type]  # uvicorn's Config stub narrower than the keywords it takes; signal handlers replaced on purpose in a thread
        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        ssl_context_factory=(lambda _config, _default: context) if context else None,
        limit_concurrency=1000, timeout_keep_alive=KEEP_ALIVE_S, lifespan=lifespan, loop=SERVER_LOOP,
    )


def _start_thread(server: uvicorn.Server, sock: socket.socket) -> threading.Thread:
    """Serve on ``sock`` (bound, not yet listening) in a thread; the server closes it when it ends."""
    # uvicorn before 0.29 installed signal handlers in run() (which fail off the main thread); later ones skip them
    # there by themselves (Server.capture_signals) and have no such attribute
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # absent from uvicorn >= 0.29 (see above)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()

    thread = threading.Thread(target=run, name="usine-sandbox", daemon=True)
    thread.start()
    return thread


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"sandbox listener did not start on port {server.config.port}")
        time.sleep(0.01)


def _serve_in_thread(app: FastAPI, host: str, port: int, timeout: float, *, cert: Path | None = None,
                     key: Path | None = None, context: ssl.SSLContext | None = None,
                     lifespan: Literal["auto", "on", "off"] = "on", configure_logging: bool = True,
                     wait: bool = True) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve ``app`` on ``host:port`` (0: a port the system chooses) in a thread: its URL, server and thread; with
    ``wait``, once it serves."""
    sock = bound_socket(host, port)
    port = sock.getsockname()[1]
    try:
        server = uvicorn.Server(uvicorn_config(app, host, port, cert, key, context=context, lifespan=lifespan,
                                               configure_logging=configure_logging))
    except BaseException:
        sock.close()
        raise
    thread = _start_thread(server, sock)
    if wait:
        _wait_started(server, thread, timeout)
    return f"{'https' if cert else 'http'}://{host}:{port}", server, thread


@dataclass
class Listeners:
    """The URLs one app is served on (``trusted``, then one per listener class of :mod:`sandbox.tls`) and how to
    stop them (:meth:`stop`: every server is told to exit before any is waited for)."""

    urls: dict[str, str]
    running: list[tuple[uvicorn.Server, threading.Thread]] = field(default_factory=list)

    def stop(self, *, wait: bool = True) -> None:
        """Tell every server to exit; with ``wait``, return once all have (without: they finish in the background,
        within about 0.2 s, and the interpreter waits for them when it exits)."""
        _stopper(*self.running, wait=wait)()


#: server threads told to exit that nobody waited for: joined when the interpreter exits (a server thread cut short
#: at exit would leave its sockets to the finaliser)
_WINDING_DOWN: list[threading.Thread] = []
_WINDING_DOWN_LOCK = threading.Lock()


@atexit.register
def _join_winding_down() -> None:
    with _WINDING_DOWN_LOCK:
        threads = list(_WINDING_DOWN)
    for thread in threads:
        thread.join(timeout=10)


def in_background(*steps: Callable[[], None]) -> None:
    """Run ``steps`` one after the other in a thread nobody waits for (but the interpreter, when it exits): the end
    of a sandbox whose state nobody reads any more (closing its store checkpoints SQLite's log to disk: seconds when
    other jobs keep the disk busy)."""

    def run() -> None:
        for step in steps:
            step()

    thread = threading.Thread(target=run, name="usine-sandbox-end", daemon=True)
    thread.start()
    _leave_running(thread)


def _leave_running(*threads: threading.Thread) -> None:
    """Let ``threads`` finish on their own (joined at exit); forget those that have."""
    with _WINDING_DOWN_LOCK:
        _WINDING_DOWN[:] = [t for t in _WINDING_DOWN if t.is_alive()] + list(threads)


def _stopper(*running: tuple[uvicorn.Server, threading.Thread], wait: bool = True) -> Callable[[], None]:
    """Stop servers together: all are told to exit before any is waited for (each takes up to a tenth of a second
    to notice, and another tenth to close its connections: one after the other, they added up). Without ``wait``, the
    threads are left to finish (joined at exit)."""

    def stop() -> None:
        for server, _ in running:
            server.should_exit = True
        if not wait:
            _leave_running(*(t for _, t in running))
            return
        for _, thread in running:
            thread.join(timeout=10)

    return stop


def start_listeners(app: FastAPI, host: str, *, pki: TestPKI | None, port: int = 0) -> Listeners:
    """The trusted listener, and with a test PKI one listener per bad class (certificate, protocol, ciphers).

    The URLs are published to the app (``GET /admin/listeners``) so a harness reaching the
    sandbox by URL finds them.
    """
    found = Listeners({})
    try:
        url, server, thread = _serve_in_thread(app, host, port, 15.0, cert=pki.server_cert if pki else None,
                                               key=pki.server_key if pki else None, lifespan="off")
        found.urls["trusted"] = url
        found.running.append((server, thread))
        if pki is not None:
            add_test_listeners(app, host, pki, found)
    except BaseException:
        _stopper(*found.running)()
        raise
    app.state.listeners = dict(found.urls)
    return found


def add_test_listeners(app: FastAPI, host: str, pki: TestPKI, found: Listeners) -> None:
    """One listener per class software must refuse, started together; only those that really serve their class
    (probed with a handshake) are published. Their servers join ``found.running``."""
    starting = []
    for cls in LISTENER_CLASSES:
        context = server_context(pki, cls)
        if context is None:
            continue  # this platform's OpenSSL (or this PKI) cannot make it: not published
        files = pki.served(cls)
        assert files is not None
        url, server, thread = _serve_in_thread(app, host, 0, 15.0, cert=files[0], key=files[1], context=context,
                                               lifespan="off", configure_logging=False, wait=False)
        found.running.append((server, thread))
        starting.append((cls, url, server, thread))
    for cls, url, server, thread in starting:
        _wait_started(server, thread, 15.0)
        if serves_as_said(url, cls):
            found.urls[cls.name] = url
    app.state.listeners = dict(found.urls)


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
    app = create_app(config)
    url, server, thread = _serve_in_thread(app, host, port, timeout, cert=tls_cert, key=tls_key)
    app.state.listeners = {"trusted": url}
    return RunningSandbox(config, url, server, thread)


# ---------------------------------------------------------------------------------------------- worker processes
#: how a worker process learns its settings: the sandbox's config as JSON, and the listeners the parent serves
CONFIG_ENV = "USINE_SANDBOX_WORKER_CONFIG"


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory): the config the parent wrote in :data:`CONFIG_ENV`."""
    spec = json.loads(os.environ[CONFIG_ENV])
    app = create_app(SandboxConfig.from_json(spec["config"]))
    app.state.listeners = dict(spec["listeners"])
    return app


def serve_workers(config: SandboxConfig, host: str, port: int, listeners: dict[str, str],
                  tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
    """Serve ``config.workers`` processes on ``host:port`` (one socket, bound here, inherited by each; uvicorn's
    supervisor restarts a worker that dies) until interrupted. Their store is ``config.database`` (PostgreSQL): a
    session, its trace and its tokens are the same whichever worker a request reaches. The parent has created the
    keys and the schema before any worker starts (so no two workers race to create them)."""
    os.environ[CONFIG_ENV] = json.dumps({"config": config.to_json(), "listeners": listeners})
    uvicorn.run("sandbox.server:app_from_environment", factory=True, host=host, port=port, workers=config.workers,
                log_level="warning", access_log=False, limit_concurrency=1000 * config.workers, timeout_keep_alive=KEEP_ALIVE_S,
                loop=SERVER_LOOP,
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None)
