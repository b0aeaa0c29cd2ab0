"""One send per answer: uvicorn's HTTP protocol over a transport that joins the writes of one turn of the event loop.

uvicorn writes an answer's status line and headers as the application sends ``http.response.start``, and its body
as it sends ``http.response.body``: two ``send()`` system calls, two TCP segments, and two wake-ups of the client,
which reads the headers alone first. On the loopback a ``send()`` also does the receiving side's TCP work, so the
two sends were a fifth of the sandbox's CPU a submission (``py-spy``, ``benchmarks/sandbox_throughput.py``). Here
the writes made during one step of the event loop are held, and leave together in one ``write`` when that step
ends (``loop.call_soon``): a response sent in one step (the usual one, on SQLite) goes out in one segment; one whose
application awaits between the head and the body (a store call in a thread, a stalled answer) leaves as before, its
head when the step that wrote it ends. Closing sends what is held first; aborting drops it (a reset sends nothing).
Past :data:`HOLD_AT_MOST` bytes held, a write leaves at once: a body written in many pieces within one step (a
stream whose chunks never wait) reaches the real transport, whose buffer then pauses the application as before
(uvicorn's flow control), instead of piling up here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: bytes held at most before a write leaves at once (an answer's head and usual body are far below it)
HOLD_AT_MOST = 64 * 1024


class JoinedWrites:
    """``transport`` whose writes of one turn of the loop leave in one write (every other call passes through)."""

    __slots__ = ("_transport", "_loop", "_held", "_size")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size > HOLD_AT_MOST:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is held, now (in one write)."""
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            self._size = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class JoinedWritesHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through :class:`JoinedWrites` (its flow control on the real transport)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
        super().connection_made(transport)
        self.transport = JoinedWrites(transport, self.loop)  # type: ignore[assignment]  # a transport by its methods
