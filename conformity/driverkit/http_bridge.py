"""Serve a stdio driver as an HTTPS JSON-RPC endpoint (what an agency's witnessed run calls).

``usine driver serve-http --vendor vendor.toml --cert server.pem --key server.key`` answers each
``POST`` (one JSON-RPC 2.0 request) with the answer of the driver the manifest names. Each HTTP
connection has its own driver process, started by its first call and ended by ``shutdown`` or when the
connection closes (the harness opens the driver once per scenario, over one keep-alive connection), so
a call the harness gave up on cannot reach the next scenario's process. The endpoint is TLS only: its
certificate is what the agency verifies before it runs anything.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conformity.harness.driver import DriverFailure, StdioDriver
from conformity.harness.vendor import DriverSpec

MAX_REQUEST = 4 * 1024 * 1024


class Bridge:
    """One connection's stdio driver process, started on demand."""

    def __init__(self, spec: DriverSpec):
        if not spec.command:
            raise ValueError("the HTTP bridge serves a driver started by a command (stdio)")
        self.spec = spec
        self.lock = threading.Lock()
        self.driver: StdioDriver | None = None

    def answer(self, msg: Any) -> dict[str, Any]:
        """The JSON-RPC answer to one request (errors of the driver relayed, failures as -32603)."""
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32600, "message": "not a JSON-RPC 2.0 request"}}
        method, params = msg["method"], msg.get("params") or {}
        with self.lock:
            try:
                if self.driver is None:
                    self.driver = StdioDriver(self.spec)
                result = self.driver.call(method, params)
                if method == "shutdown":
                    self._stop()
                return {"jsonrpc": "2.0", "id": rid, "result": result}
            except DriverFailure as exc:
                if exc.kind == "rpc-error" and isinstance(exc.evidence.get("error"), dict):
                    return {"jsonrpc": "2.0", "id": rid, "error": exc.evidence["error"]}
                self._stop()
                return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": str(exc)[:2000]}}

    def _stop(self) -> None:
        if self.driver is not None:
            driver, self.driver = self.driver, None
            try:
                driver.proc.kill()
                driver.proc.wait(5)
            except OSError:
                pass

    def close(self) -> None:
        with self.lock:
            self._stop()


class BridgeServer(ThreadingHTTPServer):
    """The HTTPS server; ``close_drivers()`` ends every connection's driver process."""

    daemon_threads = True
    bridges: set[Bridge]

    def close_drivers(self) -> None:
        for bridge in list(self.bridges):
            bridge.close()


def make_server(spec: DriverSpec, host: str, port: int, cert: str, key: str) -> BridgeServer:
    """An HTTPS server (not yet serving) in front of the driver; ``server.server_port`` is its port."""
    if not spec.command:
        raise ValueError("the HTTP bridge serves a driver started by a command (stdio)")
    bridges: set[Bridge] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection, one driver process
        #: TCP_NODELAY on each connection: an answer is written in two parts (headers, body), and the second would
        #: wait for the harness's delayed ACK of the first, 40 ms a driver call
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            self.bridge = Bridge(spec)
            with lock:
                bridges.add(self.bridge)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                self.bridge.close()
                with lock:
                    bridges.discard(self.bridge)

        def do_POST(self) -> None:
            length = self.headers.get("content-length", "")
            if not length.isdigit() or int(length) > MAX_REQUEST:
                self.send_error(413 if length.isdigit() else 411)
                return
            try:
                msg = json.loads(self.rfile.read(int(length)))
            except ValueError:
                msg = None
            answer = self.bridge.answer(msg) if msg is not None else {
                "jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = BridgeServer((host, port), Handler)
    server.bridges = bridges
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server
