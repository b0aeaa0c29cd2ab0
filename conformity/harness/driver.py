"""JSON-RPC 2.0 clients for the vendor's driver: a process on stdin/stdout, or an HTTP endpoint.

A driver that crashes, hangs or answers garbage raises DriverFailure carrying the evidence
(what happened, the raw line, the tail of stderr, the exit code); the harness records it as the
failure of that scenario and goes on.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import json
import os
import queue
import secrets
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from conformity import jsonio
from conformity.errors import InputError
from conformity.harness.vendor import DriverSpec

PROTOCOL = "usine.driver/1"
STDERR_TAIL = 40
#: seconds (at most: less if the driver's timeout is shorter) a reusable driver has to answer ``reset`` and write its
#: marker, as long as it has to shut down
RESET_TIMEOUT_S = 5.0
#: once the driver exited, how long the processes it started and left running have to end on SIGTERM (then SIGKILL)
GROUP_GRACE_S = 2.0
#: how much of a driver's error output a trace keeps (the rest is cut, and says so)
STDERR_KEPT = 1 << 20
#: the largest answer read from a driver (over HTTP: a witnessed run's driver is the vendor's endpoint; on standard
#: output: one line), and the most of its standard output the harness holds unread at any time
MAX_ANSWER_BYTES = 32 << 20
#: a driver's error output is read in pieces of at most this many bytes (a line longer than that is several pieces):
#: a line of gigabytes with no line break is never held whole
STDERR_PIECE = 64 << 10
#: how much lower than the harness's the CPU priority of a driver process is (POSIX niceness, added to the harness's
#: own): the harness's process serves every scenario at once (the in-process sandbox, the runner), and a driver's
#: start-up (an interpreter, the software's imports) would otherwise take the cores from it just when the run starts.
#: The order of the software's own work is unchanged, and when cores are free the niceness changes nothing: it only
#: says who waits when they are all taken (the reference wave run on 2 cores: 4.7-5.0 s → 4.4-4.6 s).
DRIVER_NICENESS = 10


@dataclass
class DriverFailure(Exception):
    """The driver did not answer properly: kind is crash, timeout, garbage, rpc-error, start-failed or (a driver
    reached over HTTP) unreachable."""

    kind: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"driver {self.kind}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.evidence}


class _Oversized:
    """What stands in the queue of a driver's answers for standard output past :data:`MAX_ANSWER_BYTES` (a line that
    long, or that much output nobody read): the rest is read and dropped until the process ends."""


OVERSIZED = _Oversized()


class Driver(Protocol):
    def call(self, method: str, params: dict[str, Any] | None = None) -> Any: ...
    def close(self) -> None: ...
    def error_output(self) -> str | None: ...


def _parse_answer(raw: str, method: str, evidence: dict[str, Any], status: str = "") -> Any:
    """A driver's answer as JSON (strict, bounded depth: one nested 100,000 deep is garbage, not a crash)."""
    try:
        return jsonio.loads(raw, source=f"answer to {method}")
    except InputError as exc:
        raise DriverFailure("garbage", f"answer to {method} is not JSON{status}: {exc.what()}",
                            {"raw": raw[:2000], **evidence}) from None


def _why_not_ours(msg: Any, expected_id: int) -> str:
    """Why an answer is not the awaited request's (requests are numbered from 1, one at a time)."""
    if not isinstance(msg, dict):
        return f"a JSON {type(msg).__name__}, not an object"
    if msg.get("jsonrpc") != "2.0":
        return 'no "jsonrpc": "2.0" member'
    rid = msg.get("id")
    if "id" not in msg:
        return "no id member (a notification is never an answer)"
    if isinstance(rid, int) and not isinstance(rid, bool) and rid >= 1:
        return (f"a second answer to request {rid} (answered already: the driver answers "
                "a request twice)") if rid < expected_id else f"an answer to request {rid}, never sent"
    return f"id {rid!r}, never sent (the harness numbers its requests 1, 2, 3…)"


def _check_response(raw: str, msg: Any, expected_id: int) -> Any:
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or msg.get("id") != expected_id:
        raise DriverFailure("garbage", f"not a JSON-RPC 2.0 response to request {expected_id}: {_why_not_ours(msg, expected_id)}",
                            {"raw": raw[:2000]})
    if "error" in msg and "result" in msg:  # JSON-RPC 2.0: one or the other, never both
        raise DriverFailure("garbage", "JSON-RPC response has both result and error", {"raw": raw[:2000]})
    if "error" in msg:
        err = msg["error"]
        if not isinstance(err, dict) or not isinstance(err.get("code"), int):
            raise DriverFailure("garbage", "malformed JSON-RPC error object", {"raw": raw[:2000]})
        raise DriverFailure("rpc-error", f"{err.get('code')}: {err.get('message', '')}",
                            {"raw": raw[:2000], "error": err})
    if "result" not in msg:
        raise DriverFailure("garbage", "JSON-RPC response has neither result nor error", {"raw": raw[:2000]})
    return msg["result"]


def _kept(lines: list[str]) -> str:
    """Error output as a trace keeps it: the first MiB, and says so when there was more."""
    text = "".join(lines)
    return text if len(text) < STDERR_KEPT else text[:STDERR_KEPT] + "\n… (cut at 1 MiB)\n"


class StdioDriver:
    """A driver process: one JSON-RPC object per line on stdin (requests) and stdout (responses)."""

    def __init__(self, spec: DriverSpec):
        self.spec = spec
        self._next_id = 0
        self._lines: queue.Queue[str | _Oversized | None] = queue.Queue()
        self._unread = 0  # bytes of standard output in ``_lines`` (a bound on what a driver makes the harness hold)
        self._unread_lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        try:
            # a process group of its own: what the driver starts (the software, in the background) ends with it
            self.proc = subprocess.Popen(
                list(spec.command), cwd=spec.cwd, env={**os.environ, **spec.env}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: an environment or argument no process takes (a NUL)
            raise DriverFailure("start-failed", f"cannot start {spec.command[0]!r}: "
                                                f"{getattr(exc, 'strerror', None) or exc}",
                                {"command": list(spec.command)}) from exc
        lower_priority(self.proc.pid, DRIVER_NICENESS)
        self._stderr_all: list[str] = []
        self._stderr_size = 0
        #: the error output of the scenario before the last reset (split at its marker line), not yet taken
        self._stderr_before: list[str] | None = None
        self._stderr_lock = threading.Lock()
        self._marker: str | None = None
        self._marker_seen = threading.Event()
        self._stdout_pump = threading.Thread(target=self._pump_stdout, daemon=True)
        self._stdout_pump.start()
        self._stderr_pump = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_pump.start()

    def _pump_stdout(self) -> None:
        """Each line of standard output into ``_lines``, decoded; once a line, or the output not yet read, passes
        :data:`MAX_ANSWER_BYTES`: :data:`OVERSIZED` and nothing more (what follows is read and dropped)."""
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline(MAX_ANSWER_BYTES + 1):
            with self._unread_lock:
                self._unread += len(line)
                over = len(line) > MAX_ANSWER_BYTES or self._unread > MAX_ANSWER_BYTES
            if over:
                self._lines.put(OVERSIZED)
                while self.proc.stdout.read(1 << 20):
                    pass
                break
            self._lines.put(line.decode("utf-8", errors="replace"))
        self._lines.put(None)

    def _take_line(self, timeout: float) -> str | _Oversized | None:
        raw = self._lines.get(timeout=timeout)
        if isinstance(raw, str):
            with self._unread_lock:
                self._unread = max(0, self._unread - len(raw.encode("utf-8", errors="replace")))
        return raw

    def _pump_stderr(self) -> None:
        """The error output, in lines (a line longer than :data:`STDERR_PIECE` bytes in several pieces)."""
        assert self.proc.stderr is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while piece := self.proc.stderr.readline(STDERR_PIECE):
            line = decoder.decode(piece)
            with self._stderr_lock:
                if self._marker is not None and line.rstrip("\n") == self._marker:
                    # a reset's marker: what came before is the finished scenario's, what follows the next one's
                    self._stderr_before, self._stderr_all, self._stderr_size = self._stderr_all, [], 0
                    self._stderr.clear()
                    self._marker = None
                    self._marker_seen.set()
                    continue
                self._stderr.append(line.rstrip("\n"))
                if self._stderr_size < STDERR_KEPT:
                    self._stderr_all.append(line)
                    self._stderr_size += len(line)

    def error_output(self) -> str:
        """What the driver process wrote on its error output (the first MiB) during its scenario: since it started,
        or since its last ``reset``; call it once the process has exited, or once :meth:`reset` returned."""
        with self._stderr_lock:
            lines = (self._stderr_before or []) + self._stderr_all
            self._stderr_before, self._stderr_all, self._stderr_size = None, [], 0
        return _kept(lines)

    def reset(self) -> str:
        """Make a reusable driver (``reuse`` in vendor.toml) fresh for another scenario; the error output of the one
        that ended.

        The driver forgets the session that ended and writes the marker the harness sends as one line on its error
        output before it answers ``{"fresh": true}``: the harness knows which scenario each line belongs to (each goes
        into its own trace). Any other answer, no marker, or output nobody asked for raises DriverFailure: the process
        is not to be reused.
        """
        if not self._lines.empty():
            raise DriverFailure("garbage", "the driver wrote output nobody asked for before reset", self.evidence())
        marker = f"usine.driver reset {secrets.token_hex(12)}"
        self._marker_seen.clear()
        with self._stderr_lock:
            self._marker = marker
        wait = min(self.spec.timeout, RESET_TIMEOUT_S)
        result = self.call("reset", {"marker": marker}, timeout=wait)
        if result != {"fresh": True}:
            raise DriverFailure("garbage", f"reset answered {json.dumps(result)[:200]}, not {{\"fresh\": true}}",
                                self.evidence())
        if not self._marker_seen.wait(timeout=wait):
            raise DriverFailure("timeout", f"the driver did not write the reset marker on its error output within "
                                           f"{wait:g} s", self.evidence())
        if not self._lines.empty():
            raise DriverFailure("garbage", "the driver wrote output nobody asked for after reset", self.evidence())
        with self._stderr_lock:
            before, self._stderr_before = self._stderr_before or [], None
        return _kept(before)

    def evidence(self) -> dict[str, Any]:
        return {"stderr_tail": list(self._stderr), "exit_code": self.proc.poll()}

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """One request and its answer within ``timeout`` seconds (by default the driver's, from vendor.toml)."""
        timeout = self.spec.timeout if timeout is None else timeout
        self._next_id += 1
        rid = self._next_id
        request = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        deadline = time.monotonic() + timeout
        try:
            sent = self._send(request.encode("utf-8") + b"\n", deadline)
        except (BrokenPipeError, OSError) as exc:
            self.proc.wait(timeout=5)
            raise DriverFailure("crash", f"driver exited before {method} could be sent", self.evidence()) from exc
        if not sent:
            self.kill()
            raise DriverFailure("timeout", f"the driver did not read the request {method} within {timeout:g} s (it "
                                           "reads one request a line on standard input, the next once it answered)",
                                self.evidence())
        try:
            raw = self._take_line(max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.kill()
            raise DriverFailure("timeout", f"no answer to {method} within {timeout:g} s", self.evidence()) from None
        if raw is None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
            # what it wrote on its error output before it exited (the reason, often) read before it is quoted; a
            # process it left running may hold that output open: not waited for long
            self._stderr_pump.join(timeout=1.0)
            raise DriverFailure("crash", f"driver closed its output during {method}", self.evidence())
        if isinstance(raw, _Oversized):
            self.kill()
            raise DriverFailure("garbage", f"the answer to {method} (or output nobody asked for before it) holds more "
                                           f"than {MAX_ANSWER_BYTES} bytes on standard output: not read further "
                                           "(answer one JSON-RPC response per line; log to standard error)",
                                self.evidence())
        return _check_response(raw, _parse_answer(raw, method, self.evidence()), rid)

    def _send(self, data: bytes, deadline: float) -> bool:
        """Write ``data`` on the driver's standard input by the ``deadline``; False when the driver did not read it in
        time (a pipe holds 64 KiB: a blocking write of more would wait for a driver that stopped reading, for ever)."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [fd], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return False
            # a pipe select() calls writable has room for PIPE_BUF bytes at least: a write that size never blocks
            view = view[os.write(fd, view[:select.PIPE_BUF]):]
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._end_group(signal.SIGKILL)

    def _end_group(self, sig: int) -> None:
        """Signal what remains of the driver's process group (the processes it started and left running); nothing
        when none remains."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("shutdown", timeout=min(self.spec.timeout, 5.0))
            except DriverFailure:
                pass
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                self.kill()
        # the driver has exited; a process it started may still hold its output open (the pumps never see its end)
        self._end_group(signal.SIGTERM)
        self._stderr_pump.join(timeout=GROUP_GRACE_S)
        self._stdout_pump.join(timeout=0.1)
        if self._stdout_pump.is_alive() or self._stderr_pump.is_alive():
            self._end_group(signal.SIGKILL)
            self._stderr_pump.join(timeout=5)
            self._stdout_pump.join(timeout=5)
        for stream, pump in ((self.proc.stdout, self._stdout_pump), (self.proc.stderr, self._stderr_pump)):
            if stream is not None and not pump.is_alive():  # closing a pipe a thread still reads would wait for it
                stream.close()


class HttpDriver:
    """A driver reached by JSON-RPC 2.0 over HTTP POST."""

    def __init__(self, spec: DriverSpec):
        assert spec.url
        self.spec = spec
        self._url: str | None = None if spec.connect_to else spec.url
        self._headers: dict[str, str] = {}
        self._extensions: dict[str, Any] = {}
        self._next_id = 0
        self._client = httpx.Client(timeout=spec.timeout, verify=spec.verify)

    def _pin(self) -> str:
        """The URL to post to: with ``connect_to``, the host's checked address, resolved once for this driver.

        The host name still names the server (SNI and certificate verification, ``Host``), so a name that
        resolves elsewhere later (DNS rebinding) cannot move the calls to another address.
        """
        if self._url is not None:
            return self._url
        assert self.spec.url and self.spec.connect_to
        url = httpx.URL(self.spec.url)
        try:
            address = self.spec.connect_to(url.host, url.port or 443)
        except Exception as exc:  # any failure of the address policy (resolution, refusal) refuses the driver
            raise DriverFailure("unreachable", f"the driver's address is refused: {exc}", {"url": self.spec.url}) from exc
        self._headers = {"Host": url.netloc.decode("ascii")}
        self._extensions = {"sni_hostname": url.host}
        self._url = str(url.copy_with(host=address))
        return self._url

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._next_id += 1
        rid = self._next_id
        url = self._pin()
        deadline = time.monotonic() + self.spec.timeout
        late = DriverFailure("timeout", f"no answer to {method} within {self.spec.timeout:g} s", {"url": self.spec.url})
        try:
            # the answer read as it comes, up to MAX_ANSWER_BYTES and within the timeout in all (httpx's applies to
            # each read: a byte every few seconds would keep the call alive for ever)
            with self._client.stream("POST", url, json={"jsonrpc": "2.0", "id": rid, "method": method,
                                                        "params": params or {}},
                                     headers=self._headers, extensions=self._extensions) as r:
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise DriverFailure("garbage", f"the answer to {method} holds more than {MAX_ANSWER_BYTES} "
                                                       "bytes: not read further", {"url": self.spec.url})
                    if time.monotonic() > deadline:
                        raise late
                raw = bytes(body).decode(r.charset_encoding or "utf-8", errors="replace")
        except httpx.TimeoutException:
            raise late from None
        except httpx.HTTPError as exc:
            raise DriverFailure("unreachable", f"cannot reach the driver: {exc}", {"url": self.spec.url}) from exc
        try:
            return _check_response(raw, _parse_answer(raw, method, {}, f" (HTTP {r.status_code})"), rid)
        except DriverFailure as failure:
            failure.evidence.setdefault("url", self.spec.url)  # an HTTP driver's: no standard output to blame
            raise

    def close(self) -> None:
        if self._client.is_closed:
            return  # closed already: once only
        try:
            self.call("shutdown")
        except DriverFailure:
            pass
        self._client.close()

    def error_output(self) -> None:
        """A driver reached over HTTP has no error output the harness can see."""
        return None


def lower_priority(pid: int, niceness: int) -> None:
    """Process ``pid`` (a child of this one) ``niceness`` below this process's CPU priority, where the platform has
    priorities (POSIX); set from here rather than in the child before it runs its command (``preexec_fn`` is unsafe
    in a process with threads, and drivers are started from the scenarios' threads)."""
    if not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):  # the process already exited: its failure is the driver's to report
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness))


def open_driver(spec: DriverSpec) -> Driver:
    return StdioDriver(spec) if spec.command else HttpDriver(spec)


class DriverPool:
    """The driver processes of one run: a fresh one for every scenario, or, for a driver that declares ``reuse``,
    idle processes made fresh by ``reset`` and handed to the next scenario (its start-up, an interpreter and the
    software's imports, is paid once per process instead of once per scenario)."""

    def __init__(self, spec: DriverSpec, scenarios: int | None = None):
        self.spec = spec
        self._fresh: list[Driver] = []  # processes started ahead (start), not yet handed to a scenario
        self._idle: list[StdioDriver] = []  # processes that served a scenario and answered reset
        self._lock = threading.Lock()
        #: scenarios still to be handed a driver (None: unknown); at 0, a process that answers reset is shut down at
        #: once instead of waiting idle for the end of the run
        self._to_serve = scenarios
        self._closing: list[threading.Thread] = []  # processes being shut down meanwhile (joined by close)
        #: processes started and scenarios served (for the benchmark and the tests)
        self.started = 0
        self.reused = 0

    def start(self, count: int) -> None:
        """Start ``count`` driver processes now (at most one per scenario left to serve), before any scenario asks for
        one: while the caller does something else (starts the sandbox), they start up (an interpreter, the software's
        imports). Each is handed, untouched, to the next scenarios, the first started first; one that cannot start is
        left for :meth:`acquire` to report."""
        if not self.spec.command:
            return  # a driver reached over HTTP has no start-up to get ahead of
        with self._lock:
            count = min(count, self._to_serve) if self._to_serve is not None else count
            count -= len(self._fresh)
        for _ in range(max(0, count)):
            try:
                driver = open_driver(self.spec)
            except DriverFailure:
                return
            with self._lock:
                self._fresh.append(driver)
                self.started += 1

    @property
    def started_ahead(self) -> int:
        """Processes started ahead (:meth:`start`) not yet handed to a scenario."""
        with self._lock:
            return len(self._fresh)

    def acquire(self) -> Driver:
        """A driver for one scenario: one started ahead, an idle reusable process, else a new one (DriverFailure if
        it cannot start)."""
        with self._lock:
            if self._to_serve is not None:
                self._to_serve -= 1
            if self._fresh:
                return self._fresh.pop(0)
            if self._idle:
                self.reused += 1
                return self._idle.pop()
            self.started += 1
        return open_driver(self.spec)

    def release(self, driver: Driver, *, reusable: bool) -> str | None:
        """The scenario of ``driver`` ended: the driver's error output during it. A reusable driver whose scenario went
        without a crash, timeout or garbage (``reusable``) is reset and kept for the next scenario; any other is shut
        down, as is one that fails its reset (the next scenario gets a new process)."""
        if self.spec.reuse and reusable and isinstance(driver, StdioDriver) and driver.proc.poll() is None:
            try:
                output = driver.reset()
            except DriverFailure:
                pass
            else:
                with self._lock:
                    spare = self._to_serve is not None and self._to_serve <= 0
                    if not spare:
                        self._idle.append(driver)
                if spare:  # no scenario left to serve: shut it down now, while the others run
                    self._close_later([driver])
                return output
        driver.close()
        return driver.error_output()

    def _close_later(self, drivers: list[Driver]) -> None:
        """Shut ``drivers`` down, each in a thread of its own (the caller does not wait; :meth:`close` does)."""
        threads = [threading.Thread(target=d.close, name="usine-driver-close", daemon=True) for d in drivers]
        for thread in threads:
            thread.start()
        with self._lock:
            self._closing.extend(threads)

    def close(self) -> None:
        """Shut the idle processes down, all at once (at the end of the run), and wait for every process being shut
        down."""
        with self._lock:
            idle, self._idle, fresh, self._fresh = self._idle, [], self._fresh, []
        self._close_later([*fresh, *idle])
        with self._lock:
            closing, self._closing = self._closing, []
        for thread in closing:
            thread.join()
