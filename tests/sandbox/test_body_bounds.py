"""Every route's body is bounded before it is read: a declared Content-Length over ``max_body_bytes`` is refused 413
without waiting for a byte of the body, and a chunked body without Content-Length is refused as soon as it passes
the bound — on the admin API, every service and the production role alike."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.server import RunningSandbox

WRITES = ("post", "put", "patch", "delete")


def paths(sandbox_server: RunningSandbox, sid: str) -> list[tuple[str, str]]:
    doc: dict[str, Any] = sandbox_server.server.config.app.openapi()
    return [(method.upper(), re.sub(r"\{[^}]+\}", "x", path.replace("{session_id}", sid)))
            for path, ops in doc["paths"].items() for method in ops if method in WRITES]


def head_only(base_url: str, method: str, path: str, declared: int) -> bytes:
    """Send the request line and headers declaring ``declared`` bytes of body, and none of it: the answer."""
    where = urlsplit(base_url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
        conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_declared_length_over_the_bound_is_refused_before_the_body(sandbox_server: RunningSandbox,
                                                                       new_session: Any) -> None:
    limit = sandbox_server.config.max_body_bytes
    wrong = []
    operations = paths(sandbox_server, new_session()["session_id"])
    assert len(operations) > 30
    for method, path in operations:
        answer = head_only(sandbox_server.base_url, method, path, limit + 1)
        if not answer.startswith(b"HTTP/1.1 413"):
            wrong.append(f"{method} {path}: {answer[:60]!r}")
    assert not wrong, "\n".join(wrong)


def test_a_chunked_body_over_the_bound_is_refused(sandbox_server: RunningSandbox, new_session: Any,
                                                  client: httpx.Client) -> None:
    limit = sandbox_server.config.max_body_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 64):  # 4 MiB more than the bound, if it were all read
            yield b" " * 65536

    wrong = []
    for method, path in paths(sandbox_server, new_session()["session_id"]):
        try:
            r = client.request(method, path, content=chunks(), headers={"Content-Type": "application/json"})
            status = r.status_code
        except httpx.HTTPError as exc:  # the server closed while the client still sent: said as such
            status = -1
            wrong.append(f"{method} {path}: {exc!r}")
        if status != 413:
            wrong.append(f"{method} {path}: {status}")
    assert not wrong, "\n".join(wrong)
