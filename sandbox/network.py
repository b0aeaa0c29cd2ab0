"""Network faults: what a service's connection does to the software, beyond the answers a service gives.

Set per session and service like the other faults (``PUT /admin/sessions/{id}/faults``), each a count of
the next requests it applies to:

* ``reset`` — the connection is reset (TCP RST) before the request is processed: nothing happened;
* ``dropped_replies`` — the request is processed (a submission is stored), then the connection is closed
  without any answer: the software cannot know it succeeded;
* ``stall`` — the request is processed, then the answer is held until the software gives up (closes the
  connection) or :data:`STALL_SECONDS` pass — longer than any requirement lets software wait — after which
  it is sent, late.

They hit the requests that do what the service is for: by default its POST, PUT and DELETE requests (a
look-up, a submission, a message), or the methods its module lists in ``NETWORK_METHODS`` (a search service's
GET); not the reads software does on the side. The identity providers' connections never fail this way.

The recording middleware applies them (it holds the connection) and records each exchange with the
outcome ``connection-reset``, ``reply-dropped`` or ``client-gave-up`` (details: how long the software
waited), or the service's own outcome with ``late_by`` seconds for an answer the software waited for.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import time
from typing import Any

from starlette.types import Receive

from sandbox import plugins
from sandbox.deps import take_fault
from sandbox.store import Store

NETWORK_FAULTS = ("reset", "dropped_replies", "stall")
WRITES = ("POST", "PUT", "DELETE")
#: how long a stalled answer is held at most (past the 30 s any requirement lets software wait)
STALL_SECONDS = 32.0


def network_fault_pending(session: dict[str, Any], service: str, method: str) -> bool:
    """Whether ``session`` (as read when the request arrived) holds a network fault of ``service`` for a request with
    ``method``: read only, no store call (the usual request has none, and on PostgreSQL asking the store would be a
    thread hop and a round trip for nothing)."""
    spec = session.get("faults", {}).get(service)
    if not spec or not any(spec.get(name) for name in NETWORK_FAULTS):  # none to take (the usual request)
        return False
    module = plugins.services().get(service)
    return module is not None and method in getattr(module, "NETWORK_METHODS", WRITES)


def take_network_fault(store: Store, session: dict[str, Any], service: str, method: str) -> str | None:
    """Consume one count of a network fault of ``service`` in ``session`` for a request with ``method``; its name,
    or None."""
    if not network_fault_pending(session, service, method):
        return None
    for name in NETWORK_FAULTS:
        if take_fault(store, session, service, name):
            return name
    return None


def transport_of(receive: Receive) -> asyncio.Transport | None:
    """The connection a request came on (uvicorn's request cycle holds it; None for another server)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    # asyncio's transports, or uvloop's (which implement the same interface without subclassing asyncio's)
    if all(callable(getattr(transport, name, None)) for name in ("abort", "close", "get_extra_info")):
        return transport
    return None


def client_gone(receive: Receive) -> bool:
    """Whether the client has closed its connection: it gave up waiting, and will never read the answer.

    uvicorn's flag once it saw the connection lost, or the socket itself (the peer's end of stream, pending for the
    event loop when it is busy)."""
    if getattr(getattr(receive, "__self__", None), "disconnected", False):
        return True
    transport = transport_of(receive)
    if transport is None:
        return False
    if transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    hangup = getattr(select, "POLLRDHUP", 0) | select.POLLHUP
    if sock is None or not hasattr(select, "poll"):
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), hangup)
        return any(events & hangup for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def reset(receive: Receive) -> None:
    """Reset the connection: SO_LINGER 0 then abort, so the peer gets a TCP RST, not an orderly close."""
    transport = transport_of(receive)
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def drop(receive: Receive) -> None:
    """Close the connection without a word (no HTTP answer at all)."""
    transport = transport_of(receive)
    if transport is not None:
        transport.close()


async def until_given_up(receive: Receive, limit: float = STALL_SECONDS) -> tuple[bool, float]:
    """Hold the request until the client disconnects or ``limit`` seconds pass: (gave up, seconds waited)."""
    started = time.monotonic()
    try:
        while True:
            message = await asyncio.wait_for(receive(), timeout=max(0.0, limit - (time.monotonic() - started)))
            if message.get("type") == "http.disconnect":
                return True, round(time.monotonic() - started, 3)
    except TimeoutError:
        return False, round(time.monotonic() - started, 3)
