"""An answer leaves in one write (``sandbox.transport``): uvicorn's two writes, head and body, joined within a turn of
the event loop; an answer whose body comes a turn later still leaves, head first; closing sends what is held,
aborting sends nothing.

Served by a real uvicorn on a real socket; the real transport's writes are counted."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sandbox.server import SERVER_LOOP
from sandbox.transport import JoinedWrites, JoinedWritesHttpTools

WRITES: list[bytes] = []


class Counted:
    """A transport whose writes are recorded in :data:`WRITES` (everything else passes through)."""

    def __init__(self, transport: asyncio.Transport):
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CountedJoined(JoinedWritesHttpTools):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


class CountedPlain(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/now``: head and body in one step; ``/later``: the body a turn later; ``/close``: the connection closed."""
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"3000")]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/later":
        await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"x" * 3000})


@contextmanager
def served(protocol: type[asyncio.Protocol]) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, loop=SERVER_LOOP,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def writes_of(base: str, path: str) -> list[bytes]:
    WRITES.clear()
    with httpx.Client(base_url=base) as client:
        response = client.get(path)
    assert response.status_code == 200 and response.content == b"x" * 3000
    return list(WRITES)


def test_an_answer_leaves_in_one_write() -> None:
    with served(CountedJoined) as base:
        writes = writes_of(base, "/now")
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n" + b"x" * 3000)


def test_uvicorn_alone_writes_head_and_body_apart() -> None:
    """The control: the count above is the change's, not the test's."""
    with served(CountedPlain) as base:
        assert len(writes_of(base, "/now")) == 2


def test_a_body_sent_a_turn_later_follows_its_head() -> None:
    with served(CountedJoined) as base:
        writes = writes_of(base, "/later")
    assert len(writes) == 2 and writes[0].startswith(b"HTTP/1.1 200 OK") and writes[1] == b"x" * 3000


def test_closing_sends_what_is_held_first() -> None:
    with served(CountedJoined) as base:
        writes = writes_of(base, "/close")
    assert len(writes) == 1 and b"connection: close" in writes[0]


class Recorder:
    """A transport's calls, in order (the wrapper's contract, without a socket)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_aborting_drops_what_is_held(loop: asyncio.AbstractEventLoop) -> None:
    real = Recorder()
    joined = JoinedWrites(real, loop)  # type: ignore[arg-type]
    joined.write(b"head")
    assert joined.get_write_buffer_size() == 7 + 4  # held bytes count as buffered (uvicorn's flow control)
    joined.abort()
    loop.run_until_complete(asyncio.sleep(0))
    assert real.calls == [("abort", b"")]


def test_writes_of_one_turn_join_and_the_next_turn_writes_alone(loop: asyncio.AbstractEventLoop) -> None:
    real = Recorder()
    joined = JoinedWrites(real, loop)  # type: ignore[arg-type]
    joined.write(b"a")
    joined.write(b"")
    joined.writelines([b"b", bytearray(b"c")])
    loop.run_until_complete(asyncio.sleep(0))
    joined.write(b"d")
    loop.run_until_complete(asyncio.sleep(0))
    assert real.calls == [("write", b"abc"), ("write", b"d")]


def test_nothing_is_written_to_a_closing_transport(loop: asyncio.AbstractEventLoop) -> None:
    real = Recorder()
    joined = JoinedWrites(real, loop)  # type: ignore[arg-type]
    joined.write(b"a")
    real.closing = True  # the peer went away meanwhile
    loop.run_until_complete(asyncio.sleep(0))
    assert real.calls == []


def test_a_long_step_of_writes_reaches_the_transport_past_the_bound(loop: asyncio.AbstractEventLoop) -> None:
    """Review: a stream whose chunks never wait wrote its whole body within one step, held here, out of reach of the
    real transport's buffer and so of uvicorn's flow control (which pauses the application when that buffer is
    full). Past HOLD_AT_MOST bytes held, a write leaves at once."""
    real = Recorder()
    joined = JoinedWrites(real, loop)  # type: ignore[arg-type]
    chunk = b"x" * 16_384
    for _ in range(10):
        joined.write(chunk)
    assert [len(data) for _, data in real.calls] == [5 * 16_384, 5 * 16_384]
    assert joined.get_write_buffer_size() == 7  # nothing held: the real transport's buffer only
    joined.write(b"tail")
    loop.run_until_complete(asyncio.sleep(0))
    assert real.calls[-1] == ("write", b"tail")
