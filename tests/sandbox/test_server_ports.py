"""Ports: a server of this process holds its port from the start; a child on a port taken meanwhile is started again.

A port chosen free and bound a moment later races everything else on the machine that binds or connects meanwhile
(CI met it: a test listener's port was taken by then, ``address already in use``). And the socket bound first is a
TCP socket as asyncio knows one: the connections it accepts answer without Nagle's delay.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from sandbox import server
from sandbox.config import SandboxConfig


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another socket of this machine listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_an_in_process_sandbox_never_binds_a_port_chosen_earlier(tmp_path: Path, taken: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "free_port", lambda host="127.0.0.1": taken)  # what a lost race would return
    with server.start_in_thread(SandboxConfig(data_dir=tmp_path)) as running:
        assert not running.base_url.endswith(f":{taken}")
        assert httpx.get(running.base_url + "/health", timeout=10).status_code == 200


def test_a_port_asked_for_and_taken_is_refused_at_once_saying_so(tmp_path: Path, taken: int) -> None:
    with pytest.raises(OSError, match="in use"):
        server.start_in_thread(SandboxConfig(data_dir=tmp_path), port=taken)


def test_test_listeners_never_bind_a_port_chosen_earlier(tmp_path: Path, taken: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.app import create_app
    from sandbox.tls import make_test_pki

    monkeypatch.setattr(server, "free_port", lambda host="127.0.0.1": taken)
    app = create_app(SandboxConfig(data_dir=tmp_path / "data"))
    listeners = server.start_listeners(app, "127.0.0.1", pki=make_test_pki(tmp_path / "pki"))
    try:
        assert len(listeners.urls) > 1 and all(not url.endswith(f":{taken}") for url in listeners.urls.values())
        assert len({url.rsplit(":", 1)[1] for url in listeners.urls.values()}) == len(listeners.urls)
    finally:
        listeners.stop()


def _nodelay_of_connections(running: uvicorn.Server) -> list[int]:
    """TCP_NODELAY of each connection the server holds (its protocols' transports)."""
    return [conn.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            for conn in running.server_state.connections]


def test_bound_socket_is_tcp_so_accepted_connections_get_nodelay() -> None:
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; a socket made with proto 0 passes that on to
    # every connection it accepts, and a response written in two parts (headers, body) then waited for the client's
    # delayed ACK: 40 ms a request (the harness's admin calls 44 ms instead of 2.5, a wave run 10.2 s instead of 6.5)
    with server.bound_socket("127.0.0.1") as sock:
        assert (sock.family, sock.type, sock.proto) == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)


def test_in_process_servers_answer_without_nagle_delay(tmp_path: Path) -> None:
    from sandbox.app import create_app
    from sandbox.tls import make_test_pki

    with server.start_in_thread(SandboxConfig(data_dir=tmp_path / "one")) as running, \
            httpx.Client(base_url=running.base_url, timeout=10) as client:
        assert client.get("/health").status_code == 200  # the connection stays open (keep-alive)
        assert _nodelay_of_connections(running.server) == [1]
    app = create_app(SandboxConfig(data_dir=tmp_path / "data"))
    pki = make_test_pki(tmp_path / "pki")
    listeners = server.start_listeners(app, "127.0.0.1", pki=pki)
    try:
        trusted, _ = listeners.running[0]
        with httpx.Client(base_url=listeners.urls["trusted"], verify=ssl.create_default_context(cafile=str(pki.ca_cert)),
                          timeout=10) as client:
            assert client.get("/health").status_code == 200
            assert _nodelay_of_connections(trusted) == [1]
    finally:
        listeners.stop()


def _serves_once_on(first_port: list[int]) -> Callable[[int], list[str]]:
    """A command that fails as a lost race does (the port is taken: exit 1) the first time, then serves HTTP."""

    def command(port: int) -> list[str]:
        if not first_port:
            first_port.append(port)
            return [sys.executable, "-c", "raise SystemExit('address already in use')"]
        return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]

    return command


def _up(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200


def test_a_child_that_exits_before_answering_is_started_again_on_another_port(tmp_path: Path) -> None:
    first: list[int] = []
    with (tmp_path / "log").open("wb") as log, \
            server.child_server(_serves_once_on(first), _up, timeout=30, log=log) as (process, port):
        assert process.poll() is None and _up(port)
    assert process.poll() is not None  # ended with the block
    assert first and b"address already in use" in (tmp_path / "log").read_bytes()  # the first attempt's output kept


def test_a_child_that_never_answers_fails_after_its_attempts_saying_so(tmp_path: Path) -> None:
    commands: list[int] = []

    def command(port: int) -> list[str]:
        commands.append(port)
        return [sys.executable, "-c", "raise SystemExit(3)"]

    with pytest.raises(RuntimeError, match=r"exited \(status 3\) before it answered, 2 times"):
        with server.child_server(command, _up, timeout=30, attempts=2):
            pass
    assert len(commands) == 2
