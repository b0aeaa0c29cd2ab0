"""The driver clients against real processes and a real HTTP endpoint that misbehave in every way."""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from conformity.harness.driver import (
    DRIVER_NICENESS,
    MAX_ANSWER_BYTES,
    STDERR_PIECE,
    DriverFailure,
    HttpDriver,
    StdioDriver,
    lower_priority,
)
from conformity.harness.vendor import DriverSpec
from sandbox.tls import make_test_pki

ECHO = r'''
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg["method"] == "shutdown":
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": None}), flush=True); break
    if msg["method"] == "fail":
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32000, "message": "nope"}}), flush=True); continue
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {"echo": msg["params"]}}), flush=True)
'''
CRASH = "import sys\nsys.stdin.readline()\nprint('about to crash', file=sys.stderr)\nsys.exit(3)\n"
HANG = "import sys, time\nsys.stdin.readline()\ntime.sleep(60)\n"
GARBAGE = "import sys\nsys.stdin.readline()\nprint('hello, I am not JSON', flush=True)\nsys.stdin.readline()\n"
#: answers a hostile driver may send: nested 100,000 deep (json.loads raises RecursionError), 200 deep, NaN
DEEP_ANSWERS = {"100000-deep": "[" * 100_000 + "]" * 100_000,
                "200-deep": '{"jsonrpc": "2.0", "id": 1, "result": ' + "[" * 200 + "]" * 200 + "}",
                "nan": '{"jsonrpc": "2.0", "id": 1, "result": NaN}',
                # a lone surrogate (QA, reporting: it passed the parser, then ended the run when the harness wrote it
                # back as UTF-8 into its note to the sandbox)
                "lone-surrogate": '{"jsonrpc": "2.0", "id": 1, "result": {"name": "a\\ud800b"}}'}
WRONG_ID = ("import sys, json\nsys.stdin.readline()\n"
            "print(json.dumps({'jsonrpc': '2.0', 'id': 99, 'result': 1}), flush=True)\nsys.stdin.readline()\n")


def driver(tmp_path: Path, source: str, timeout: float = 5.0) -> StdioDriver:
    script = tmp_path / "driver.py"
    script.write_text(source)
    return StdioDriver(DriverSpec(command=(sys.executable, str(script)), timeout=timeout, cwd=tmp_path))


def test_round_trip_and_rpc_error(tmp_path: Path) -> None:
    d = driver(tmp_path, ECHO)
    assert d.call("perform", {"action": "x", "input": {"a": 1}}) == {"echo": {"action": "x", "input": {"a": 1}}}
    with pytest.raises(DriverFailure) as info:
        d.call("fail")
    assert info.value.kind == "rpc-error" and "nope" in info.value.message
    assert d.call("perform", {"n": 2}) == {"echo": {"n": 2}}  # still usable after an error answer
    d.close()
    assert d.proc.poll() == 0


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="process priorities are POSIX")
def test_a_driver_process_runs_below_the_harness_s_priority(tmp_path: Path) -> None:
    """The harness's process serves every scenario (the sandbox in it): a driver's start-up must not take the cores
    from it, so the driver runs ``DRIVER_NICENESS`` below it (its own code, unchanged, sees the niceness)."""
    d = driver(tmp_path, "import os\n" + ECHO.replace('"echo": msg["params"]', '"nice": os.getpriority(os.PRIO_PROCESS, 0)'))
    try:
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + DRIVER_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, d.proc.pid) == expected
        assert d.call("perform", {}) == {"nice": expected}
    finally:
        d.close()
    lower_priority(d.proc.pid, DRIVER_NICENESS)  # a process gone already: nothing to do, no error


def test_crash_keeps_stderr_tail_and_exit_code(tmp_path: Path) -> None:
    d = driver(tmp_path, CRASH)
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "crash"
    assert info.value.evidence["exit_code"] == 3
    assert "about to crash" in info.value.evidence["stderr_tail"]
    d.close()


def test_hang_times_out_and_is_killed(tmp_path: Path) -> None:
    d = driver(tmp_path, HANG, timeout=0.5)
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "timeout"
    assert d.proc.poll() is not None
    d.close()


#: a driver that starts its software in the background, the child keeping the driver's output (``which``) open
BACKGROUND = ("import subprocess, sys\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)']{redirect})\n"
              "open(sys.argv[1], 'w').write(str(child.pid))\n") + ECHO


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")
@pytest.mark.parametrize("which", ["stdout and stderr", "stderr only", "none", "killed on timeout"])
def test_what_the_driver_started_ends_with_it_and_never_holds_the_run(tmp_path: Path, which: str) -> None:
    """A driver that starts its software in the background: a child that kept the driver's output open made
    ``close`` wait for ever (the run hung, the child outlived it). It ends with the driver, within the grace."""
    redirect = {"stdout and stderr": "", "stderr only": ", stdout=subprocess.DEVNULL",
                "none": ", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL", "killed on timeout": ""}[which]
    script = tmp_path / "driver.py"
    script.write_text(BACKGROUND.replace("{redirect}", redirect) + ("import time\ntime.sleep(60)\n"
                                                             if which == "killed on timeout" else ""))
    pid_file = tmp_path / "child.pid"
    d = StdioDriver(DriverSpec(command=(sys.executable, str(script), str(pid_file)), timeout=5.0, cwd=tmp_path))
    assert d.call("perform", {"n": 1}) == {"echo": {"n": 1}}
    child = int(pid_file.read_text())
    if which == "killed on timeout":
        d.call("shutdown", timeout=5.0)  # the driver answers, then sleeps: it is killed, its child too
    started = time.monotonic()
    d.close()
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), f"the driver's child {child} outlived it"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, its parent gone and not yet reaped by init, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("source,needle", [(GARBAGE, "hello, I am not JSON"), (WRONG_ID, '"id": 99')])
def test_garbage_is_reported_with_the_raw_line(tmp_path: Path, source: str, needle: str) -> None:
    d = driver(tmp_path, source)
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "garbage" and needle in info.value.evidence["raw"]
    d.close()


TWICE = ("import sys, json\nmsg = json.loads(sys.stdin.readline())\n"
         "for _ in range(2): print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': 1}), flush=True)\n"
         "sys.stdin.readline()\nsys.stdin.readline()\n")


@pytest.mark.parametrize("source,words", [
    (TWICE, "a second answer to request 1 (answered already"),
    (WRONG_ID, "an answer to request 99, never sent"),
    (GARBAGE.replace("'hello, I am not JSON'", "'{\"id\": 1}'"), "no \"jsonrpc\": \"2.0\" member"),
])
def test_an_answer_to_another_request_says_which(tmp_path: Path, source: str, words: str) -> None:
    """A driver answering a request twice failed the next call with 'not a JSON-RPC 2.0 response to request 2', as if
    it had written garbage: the vendor was not told its driver answers twice."""
    d = driver(tmp_path, source)
    if source is TWICE:
        assert d.call("initialize", {}) == 1
    with pytest.raises(DriverFailure) as info:
        d.call("perform" if source is TWICE else "initialize", {})
    assert info.value.kind == "garbage" and words in info.value.message, info.value.message
    d.close()


@pytest.mark.parametrize("answer", sorted(DEEP_ANSWERS))
def test_an_answer_nested_too_deep_or_not_strict_json_is_garbage_not_a_crash(tmp_path: Path, answer: str) -> None:
    """Issue 9 (bad input): a driver answering JSON nested 100,000 deep made the harness die on a RecursionError."""
    source = f"import sys\nsys.stdin.readline()\nprint({DEEP_ANSWERS[answer]!r}, flush=True)\nsys.stdin.readline()\n"
    d = driver(tmp_path, source)
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "garbage" and info.value.message.startswith("answer to initialize is not JSON: ")
    assert ("deeper than 128 levels" in info.value.message) == (answer not in ("nan", "lone-surrogate"))
    assert ("lone surrogate" in info.value.message) == (answer == "lone-surrogate")
    assert info.value.evidence["raw"].rstrip("\n") == DEEP_ANSWERS[answer][:2000]
    d.close()


def test_an_endless_line_on_standard_output_is_cut_at_its_bound_without_waiting_for_its_end(tmp_path: Path) -> None:
    """A driver writing without a line break (a binary dump, a stray ``write`` in a loop) made the harness hold the
    whole line, however long (300 MiB: 640 MiB of the harness's memory), and wait for the timeout for its end."""
    source = ("import sys, time\nsys.stdin.readline()\n"
              f"for _ in range({MAX_ANSWER_BYTES // (1 << 20) + 8}): sys.stdout.write('a' * (1 << 20))\n"
              "sys.stdout.flush()\ntime.sleep(60)\n")
    d = driver(tmp_path, source, timeout=20.0)
    start = time.monotonic()
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "garbage" and f"more than {MAX_ANSWER_BYTES} bytes" in info.value.message
    assert time.monotonic() - start < 15 and d.proc.poll() is not None  # not the timeout: cut, and the driver ended
    d.close()


def test_an_endless_line_on_error_output_is_kept_in_bounded_pieces(tmp_path: Path) -> None:
    """A driver logging 8 MiB with no line break: the stderr tail (40 lines, quoted in every trace's evidence) held
    the whole 8 MiB line; each is now a piece of at most STDERR_PIECE bytes, and the answer after it still comes."""
    source = ("import sys, json\nmsg = json.loads(sys.stdin.readline())\n"
              "for _ in range(8): sys.stderr.write('\u00e9' * (1 << 19))\n"
              "sys.stderr.flush()\n"
              "print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': 1}), flush=True)\n"
              "sys.stdin.readline()\n")
    d = driver(tmp_path, source)
    assert d.call("initialize", {}) == 1
    d.close()
    tail = d.evidence()["stderr_tail"]
    assert tail and all(len(x.encode()) <= STDERR_PIECE for x in tail) and set("".join(tail)) == {"\u00e9"}
    assert len(d.error_output()) <= (1 << 20) + 64


def test_a_driver_that_stops_reading_its_input_times_out_on_a_large_request(tmp_path: Path) -> None:
    """A driver busy elsewhere (or hung) that no longer reads its standard input: a request larger than the pipe's
    buffer (64 KiB) blocked the harness's write until the process exited, whatever the timeout (for ever for a hung
    process), then read as 'driver exited before perform could be sent'. The write is now bound by the timeout."""
    d = driver(tmp_path, "import time\ntime.sleep(60)\n", timeout=2.0)
    start = time.monotonic()
    with pytest.raises(DriverFailure) as info:
        d.call("perform", {"input": "x" * (1 << 20)})
    assert time.monotonic() - start < 10
    assert info.value.kind == "timeout" and "did not read" in info.value.message and "perform" in info.value.message
    d.close()


def test_missing_program_fails_to_start(tmp_path: Path) -> None:
    with pytest.raises(DriverFailure) as info:
        StdioDriver(DriverSpec(command=("/nonexistent/driver",), cwd=tmp_path))
    assert info.value.kind == "start-failed"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        msg = json.loads(self.rfile.read(int(self.headers["content-length"])))
        body = b"<html>oops</html>" if msg["method"] == "garbage" else DEEP_ANSWERS["100000-deep"].encode() \
            if msg["method"] == "deep" else json.dumps(
            {"jsonrpc": "2.0", "id": msg["id"], "result": {"method": msg["method"]}}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_http_driver() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d = HttpDriver(DriverSpec(url=f"http://127.0.0.1:{server.server_port}/rpc", timeout=5))
        assert d.call("initialize", {}) == {"method": "initialize"}
        with pytest.raises(DriverFailure) as info:
            d.call("garbage")
        assert info.value.kind == "garbage" and "oops" in info.value.evidence["raw"]
        with pytest.raises(DriverFailure) as info:  # a witnessed run's driver is the vendor's: hostile input
            d.call("deep")
        assert info.value.kind == "garbage" and "deeper than 128 levels" in info.value.message
        assert info.value.message.startswith("answer to deep is not JSON (HTTP 200): ")
        d.close()
    finally:
        server.shutdown()


def test_unreachable_http_driver() -> None:
    d = HttpDriver(DriverSpec(url="http://127.0.0.1:9/rpc", timeout=2))
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "unreachable"


class _EchoHost(_Handler):
    def do_POST(self) -> None:
        msg = json.loads(self.rfile.read(int(self.headers["content-length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {"host": self.headers["host"]}}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_https_driver_pinned_to_its_checked_address_never_resolves_its_host_again(tmp_path: Path) -> None:
    """``connect_to`` (witnessed runs): the calls go to the address checked once, the name still verified by TLS."""
    pki = make_test_pki(tmp_path / "pki")
    server = HTTPServer(("127.0.0.1", 0), _EchoHost)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    client = ssl.create_default_context(cafile=str(pki.ca_cert))
    asked: list[tuple[str, int]] = []

    def pin(address: str) -> Callable[[str, int], str]:
        def connect_to(host: str, p: int) -> str:
            asked.append((host, p))
            return address
        return connect_to

    try:
        d = HttpDriver(DriverSpec(url=f"https://localhost:{port}/rpc", timeout=5, verify=client,
                                  connect_to=pin("127.0.0.1")))
        assert d.call("initialize") == {"host": f"localhost:{port}"}
        assert d.call("initialize") == {"host": f"localhost:{port}"}
        assert asked == [("localhost", port)]  # resolved and checked once for this driver
        d.close()
        # the name resolves to 127.0.0.1, but the checked address is another one: the call goes there (and fails)
        with pytest.raises(DriverFailure) as info:
            HttpDriver(DriverSpec(url=f"https://localhost:{port}/rpc", timeout=2, verify=client,
                                  connect_to=pin("127.0.0.2"))).call("initialize")
        assert info.value.kind == "unreachable"

        def refuse(host: str, p: int) -> str:
            raise ValueError(f"{host} resolves to 10.0.0.1: the agency calls drivers on public addresses only")

        with pytest.raises(DriverFailure) as info:
            HttpDriver(DriverSpec(url=f"https://localhost:{port}/rpc", timeout=2, verify=client,
                                  connect_to=refuse)).call("initialize")
        assert info.value.kind == "unreachable" and "address is refused" in info.value.message
        assert "public addresses only" in info.value.message
    finally:
        server.shutdown()


def test_the_https_bridge_relays_calls_and_answers_without_nagle_delay(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``usine driver serve-http``: a stdio driver answered over HTTPS, each connection with TCP_NODELAY (an answer is
    written in two parts, headers then body: without it the body waited for the harness's delayed ACK, 44 ms a call
    instead of about 1)."""
    from conformity.driverkit.http_bridge import make_server

    pki = make_test_pki(tmp_path / "pki")
    script = tmp_path / "driver.py"
    script.write_text(ECHO)
    server = make_server(DriverSpec(command=(sys.executable, str(script)), timeout=5, cwd=tmp_path), "127.0.0.1", 0,
                         str(pki.server_cert), str(pki.server_key))
    nodelay: list[int] = []
    handler: Any = server.RequestHandlerClass
    setup = handler.setup

    def spy(self: BaseHTTPRequestHandler) -> None:
        setup(self)
        nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(handler, "setup", spy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d = HttpDriver(DriverSpec(url=f"https://127.0.0.1:{server.server_port}/rpc", timeout=5,
                                  verify=ssl.create_default_context(cafile=str(pki.ca_cert))))
        assert d.call("perform", {"n": 1}) == {"echo": {"n": 1}}
        assert d.call("perform", {"n": 2}) == {"echo": {"n": 2}}  # the same connection, the same driver process
        d.close()
        assert nodelay == [1]
    finally:
        server.shutdown()
        server.server_close()
        server.close_drivers()


def test_an_answer_with_both_result_and_error_is_garbage(tmp_path: Path) -> None:
    """JSON-RPC 2.0: a response holds result or error, never both (it read as the error)."""
    both = ("import sys, json\nsys.stdin.readline()\nprint(json.dumps({'jsonrpc': '2.0', 'id': 1, 'result': 1, "
            "'error': {'code': 1, 'message': 'x'}}), flush=True)\nsys.stdin.readline()\n")
    d = driver(tmp_path, both)
    with pytest.raises(DriverFailure) as info:
        d.call("initialize", {})
    assert info.value.kind == "garbage" and "both result and error" in info.value.message
    d.close()


@pytest.mark.parametrize("failure,words", [
    ({"kind": "garbage", "message": "m", "raw": "hello", "stderr_tail": []}, "standard output"),
    ({"kind": "garbage", "message": "m", "raw": "<html>", "url": "https://x/rpc"}, None),
    ({"kind": "crash", "message": "m", "exit_code": 3}, "exited (exit code 3)"),
    ({"kind": "unreachable", "message": "cannot reach the driver", "url": "https://x/rpc"}, "could not be reached"),
])
def test_driver_problems_are_said_for_the_transport_they_came_by(failure: dict[str, Any], words: str | None) -> None:
    from conformity.checks.causes import driver_message

    text = driver_message(failure, "at initialize")
    assert (words in text) if words else ("standard output" not in text and "exited" not in text), text


class _Hostile(BaseHTTPRequestHandler):
    """A witnessed run's driver endpoint is the vendor's: an answer of 80 MiB, or one dripped a byte at a time."""

    def do_POST(self) -> None:
        msg = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()  # no length: the answer runs until the connection closes
        try:
            if msg["method"] == "endless":
                for _ in range(80):
                    self.wfile.write(b" " * (1 << 20))
            else:
                for _ in range(40):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_an_http_answer_past_its_bound_or_dripped_past_the_timeout_is_cut() -> None:
    """The agency calls a vendor's driver endpoint (witnessed runs): its whole answer was read into memory, however
    large, and a byte every few seconds kept the call alive past any timeout (each read had its own), holding the
    agency's witness worker. An answer is now read up to a bound and within the call's timeout in all."""
    from http.server import ThreadingHTTPServer

    from conformity.harness.driver import MAX_ANSWER_BYTES

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d = HttpDriver(DriverSpec(url=f"http://127.0.0.1:{server.server_port}/rpc", timeout=1.5))
        with pytest.raises(DriverFailure) as info:
            d.call("endless")
        assert MAX_ANSWER_BYTES < 80 << 20
        assert info.value.kind == "garbage" and f"more than {MAX_ANSWER_BYTES} bytes" in info.value.message, info.value
        started = time.monotonic()
        with pytest.raises(DriverFailure) as info:
            d.call("drip")
        assert info.value.kind == "timeout" and time.monotonic() - started < 2.5, (info.value, time.monotonic() - started)
    finally:
        server.shutdown()
