"""Sandbox throughput: documents accepted per second over HTTP against the same validation in process; concurrent
vendor sessions; one worker process against several over a shared store.

A script, not a test. The sandbox runs as ``usine sandbox serve`` in its own process(es) (``--workers``, with
``--database`` PostgreSQL for more than one), as an agency runs it; this process is the vendors' side. Printed:

1. N documents submitted one after the other through ``POST /s/{sid}/dmp/documents`` (httpx, keep-alive), and
   the same documents validated in this process (base64 decode, ``parse_xml``, ``sandbox.packs.health.cda``):
   both rates, their ratio (the bar: HTTP at least 25 % of in-process on one worker), and the sandbox's own CPU
   time per document (read from /proc: what a request costs the server, whatever else runs on the machine). The
   two sides alternate in ten blocks of the documents (each over HTTP, then in process), after 50 of each not
   counted, so that the machine's drift in speed weighs on both alike; the blocks' spread is printed;
1b. the intake rate of the worker kept busy (``--intake-sessions``, 8): as many documents from that many sessions at
   once, each submitting back to back on its own keep-alive connection through the load generator below, alternated
   block by block with the same documents validated in process, as section 1 does: documents per second over HTTP
   against in process (the bar's ratio: a worker's intake rate, not one client's round trips, whose own time and the
   sandbox's idle waits between them section 1 counts) and by CPU;
2. 250 concurrent vendor sessions (``--vendors``), the bar of issue 14. A *concurrent vendor session* is what
   a harness run's test session is while it lasts: its own access token and its own connection; it fetches the
   identity provider's discovery document and keys (a login's first steps), then for each of its documents looks
   the patient's INS up (``POST /s/{sid}/insi/lookup``) and submits the document, pausing between two requests
   (exponential, mean ``--think``); the sessions open at random instants within the first think time, not at one
   instant. The pause is measured, not chosen: the reference vendor's real run (``usine run --wave 2027-W2
   --category HOSPITAL``, 19 test sessions, 263 recorded HTTP exchanges, on this 2-core machine at load 4-6) has
   a mean gap of 0.134 s between two consecutive exchanges of a session (7.5 requests/s a session), and 0.108 s
   once the next request's own time in the sandbox is taken off (median 0.037 s: the driver answers at once,
   Retry-After waits of 1 s make the tail) — the default ``--think 0.108``. ``--think-from bundle.zip`` measures
   it again from any run's recorded traces (the exchanges' times and server durations) and uses it. (The model
   used 0.35 s before, from a 2026-W1 figure of "17 requests in 6 s": a real session is 3x faster.)
   Printed: offered rate (sessions / mean think time), achieved rate, p50/p95/p99/max per kind of request, the
   CPU a request of the sandbox, of the load generator (this process) and of PostgreSQL, the load average;
   2b. capacity, printed too: 1, 16, 250… sessions with zero think time, each submitting its documents back to
   back (a closed loop that saturates the 2 cores the load generator shares): requests per second at most;
3. with ``--workers 1,2``: section 2b's largest load against each worker count (the gain of the second worker),
   as requests per second (wall clock) and per sandbox-CPU-second, with where the cores went: the sandbox's
   workers, PostgreSQL's processes (the same 2 cores) and the load generator's, and the most any worker count can
   gain on this machine (its cores over the cores busy with the first worker count: each request's work stays the
   same, so a second worker only has the cores the first left idle). ``--threads N`` serves with
   ``usine sandbox serve --threads N`` (to compare with the default, printed in the first line);
4. with ``--compare-tree DIR`` (another checkout, e.g. ``git worktree add /tmp/base main``): this checkout's
   sandbox and DIR's served at once, each kind of request (a vendor session's mix, submissions, look-ups, logins)
   sent to one then the other in alternated blocks: the CPU a request of each and their ratio — what a change
   costs or saves, with the machine's drift in speed weighing on both alike.

The load generator is one process on uvloop, one keep-alive connection per session, requests pre-encoded and sent
through h11 (the HTTP/1.1 parser httpx uses, without httpx's layers): its own CPU is printed beside the sandbox's.

    python benchmarks/sandbox_throughput.py                                   # SQLite, one worker
    python benchmarks/sandbox_throughput.py --workers 1,2 --database postgresql://usine_ci:usine_ci@127.0.0.1/postgres
    python benchmarks/sandbox_throughput.py --sessions '' --vendors '' --compare-tree /tmp/base   # a change, A/B
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from arguments import count, counts, positive  # noqa: E402

from conformity.xmlsafe import parse_xml  # noqa: E402
from sandbox.config import SandboxConfig  # noqa: E402
from sandbox.packs.health import cda, samples  # noqa: E402
from sandbox.server import child_server  # noqa: E402
from sandbox.store import open_store  # noqa: E402

TYPES = ("34106-7", "11502-2", "60591-5", "18748-4", "60593-1")
ADMIN = "bench-admin-" + uuid.uuid4().hex
# One TLS context for every client: httpx builds one per client otherwise (the CA bundle loaded again, ~70 ms of
# this process's CPU each), which for 250 sessions opening at once blocked the load generator's event loop for
# seconds and was counted as the sandbox's latency.
CLIENT_TLS = ssl.create_default_context()


class Connection:
    """One keep-alive HTTP/1.1 connection of the load generator: h11 (the parser httpx itself uses) over asyncio
    streams, requests pre-encoded. httpx's client layers cost this process ~0.5 ms a request, taken from the same
    2 cores the sandbox's workers run on; this costs a fraction (printed: the load generator's CPU a request)."""

    def __init__(self, base_url: str, token: str):
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.headers = [("host", f"{self.host}:{self.port}"), ("authorization", f"Bearer {token}"),
                        ("user-agent", "usine-benchmark/1 (REG-BENCH)")]
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.http = h11.Connection(h11.CLIENT)

    async def request(self, method: str, path: str, body: bytes | None = None) -> int:
        """Send one request, read its whole answer; its status."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        headers = self.headers + ([("content-type", "application/json"), ("content-length", str(len(body)))]
                                  if body is not None else [])
        out = self.http.send(h11.Request(method=method, target=path, headers=headers))
        if body is not None:
            out += self.http.send(h11.Data(data=body))
        self.writer.write(out + self.http.send(h11.EndOfMessage()))
        status = 0
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("the sandbox closed the connection")
                self.http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
        self.http.start_next_cycle()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run_loop(work: Any) -> Any:
    """Run a coroutine on uvloop's event loop (the load generator's own CPU, kept small), asyncio's without it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


def postgres_cpu() -> float:
    """User + system CPU of every PostgreSQL server process on this machine so far (Linux /proc; 0 when none are
    readable): the store's share of the 2 cores."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += _cpu(int(entry.name))
            except OSError:
                continue
    return total


@dataclass
class Served:
    """A sandbox served by ``usine sandbox serve`` in child processes."""

    base_url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    database: str | None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its worker processes so far (Linux /proc)."""
        return sum(_cpu(pid) for pid in _tree(self.process.pid))


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


@contextmanager
def serve(data_dir: Path, workers: int, database: str | None, retry_after: int = 1,
          xsd: Path | None = None, threads: int | None = None, tree: Path | None = None) -> Iterator[Served]:
    """``usine sandbox serve`` in child processes: this checkout's, or ``tree``'s (run in it, first on its path)."""
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "conformity", "sandbox", "serve", "--port", str(port), "--data", str(data_dir),
                "--workers", str(workers)] + (["--database", database] if database else []) + (
                ["--threads", str(threads)] if threads else []) + (
                ["--schema", f"{cda.CDA_SCHEMA.name}={xsd}"] if xsd else [])

    env = {**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": ADMIN} | ({"PYTHONPATH": str(tree)} if tree else {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    started = False
    with log_path.open("wb") as log:
        try:
            with child_server(command, lambda port: httpx.get(f"http://127.0.0.1:{port}/health",
                                                              timeout=2).status_code == 200,
                              timeout=60, env=env, log=log, cwd=tree) as (process, port):
                started = True
                url = f"http://127.0.0.1:{port}"
                time.sleep(0.5 if workers > 1 else 0)  # every worker up
                yield Served(url, process, data_dir, database)
        except RuntimeError as exc:
            if started:
                raise
            raise SystemExit(f"benchmark: the sandbox did not start ({exc}): "
                             f"{log_path.read_text(errors='replace')[-2000:]}") from None


def new_session(admin: httpx.Client, served: Served, seed: int) -> tuple[str, str, dict[str, Any]]:
    """A session id, an access token of its first practitioner (written in the shared store), its fixtures."""
    r = admin.post("/admin/sessions", json={"seed": seed, "label": "benchmark", "pack": "health"})
    r.raise_for_status()
    session = r.json()
    store = open_store(served.database, served.data_dir / "sandbox.sqlite3")
    try:
        token = samples.issue_access_token(store, session["session_id"],
                                           session["fixtures"]["practitioners"][0]["national_id"], ttl=3600)
    finally:
        store.close()
    return session["session_id"], token, session["fixtures"]


def documents(fixtures: dict[str, Any], n: int, level: str) -> list[dict[str, Any]]:
    """n valid submissions: every allowed type, level 1, 3 or both alternately, matchable patients."""
    matchable = [i for i, p in enumerate(fixtures["patients"]) if p["scenario"] == "match"]
    out = []
    for i in range(n):
        lvl = {"1": 1, "3": 3}.get(level, 1 + 2 * (i % 2))
        out.append(samples.session_submission(fixtures, patient=matchable[i % len(matchable)],
                                              type_code=TYPES[i % len(TYPES)], level=lvl))
    return out


def over_http(http: httpx.Client, served: Served, sid: str, bodies: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds to submit the bodies one after the other, and the server's CPU seconds meanwhile."""
    cpu0, started = served.cpu_seconds(), time.perf_counter()
    for body in bodies:
        r = http.post(f"/s/{sid}/dmp/documents", json=body)
        if r.status_code != 201:
            raise SystemExit(f"benchmark: submission refused: {r.status_code} {r.text[:300]}")
    return time.perf_counter() - started, served.cpu_seconds() - cpu0


def in_process(bodies: list[dict[str, Any]], config: SandboxConfig) -> tuple[float, float]:
    """Seconds (wall, CPU) to decode, parse and validate the same documents, as the service does, without HTTP."""
    xsd = config.schemas.get(cda.CDA_SCHEMA.name)
    schema = cda.load_schema(xsd) if xsd else None
    cpu0, started = time.process_time(), time.perf_counter()
    for body in bodies:
        document = base64.b64decode(body["document"], validate=True)
        root = parse_xml(document, max_bytes=config.max_xml_bytes, max_depth=config.max_xml_depth)
        findings, _ = cda.validate(root, body["metadata"], document, schema=schema)
        if findings:
            raise SystemExit(f"benchmark: sample refused in-process: {findings[0]}")
    return time.perf_counter() - started, time.process_time() - cpu0


#: section 1's documents are measured in this many blocks, each over HTTP then in process (see :func:`alternated`)
BLOCKS = 10
#: documents submitted and validated once before section 1's measurement, not counted (first requests, caches)
WARM_UP = 50


@dataclass
class Sequential:
    """Section 1: totals over HTTP and in process (wall and CPU seconds), and each block's ratio by CPU."""

    http_s: float = 0.0
    server_cpu: float = 0.0
    raw_s: float = 0.0
    raw_cpu: float = 0.0
    ratios: list[float] = field(default_factory=list)
    #: each block's rate over HTTP against its rate in process (section 1b: the bar's ratio, block by block)
    rate_ratios: list[float] = field(default_factory=list)


def alternated(served: Served, sid: str, token: str, warm_up: list[dict[str, Any]], bodies: list[dict[str, Any]],
               config: SandboxConfig) -> Sequential:
    """The documents over HTTP and in process block by block (:data:`BLOCKS`; each block over HTTP, then the same
    block in process), after the ``warm_up`` documents, submitted and validated, not counted: the machine's speed
    drifts by a quarter within minutes on a shared host, and two measurements taken one after the other would put
    that drift in their ratio; alternated, it weighs on both sides alike."""
    out = Sequential()
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        http.get("/health")
        over_http(http, served, sid, warm_up)
        in_process(warm_up, config)
        size = max(1, -(-len(bodies) // BLOCKS))
        for start in range(0, len(bodies), size):
            block = bodies[start:start + size]
            http_s, server_cpu = over_http(http, served, sid, block)
            raw_s, raw_cpu = in_process(block, config)
            out.http_s += http_s
            out.server_cpu += server_cpu
            out.raw_s += raw_s
            out.raw_cpu += raw_cpu
            if server_cpu > 0:
                out.ratios.append(raw_cpu / server_cpu)
    return out


Workload = tuple[str, str, list[dict[str, Any]]]


def at_capacity(served: Served, sessions: list[tuple[str, str]], warm_up: list[list[dict[str, Any]]],
                blocks: list[list[list[dict[str, Any]]]], config: SandboxConfig) -> Sequential:
    """Section 1b: the sessions submit their documents at the same time, back to back, each on its own keep-alive
    connection (the load generator's lean client), block by block; after each block the same documents are validated
    in process, as section 1 alternates. ``blocks[b][j]``: session j's documents of block b (``warm_up[j]``: its first
    ones, not counted). One event loop and one connection a session for every block: what a block costs the sandbox
    is its documents, not new connections."""
    out = Sequential()

    async def submit(connection: Connection, sid: str, bodies: list[bytes]) -> None:
        for body in bodies:
            status = await connection.request("POST", f"/s/{sid}/dmp/documents", body)
            if status != 201:
                raise SystemExit(f"benchmark: submission refused: {status}")

    async def run() -> None:
        connections = [Connection(served.base_url, token) for _, token in sessions]
        try:
            await asyncio.gather(*(submit(c, sid, [orjson.dumps(b) for b in docs])
                                   for c, (sid, _), docs in zip(connections, sessions, warm_up, strict=True)))
            in_process([b for docs in warm_up for b in docs], config)
            for block in blocks:
                encoded = [[orjson.dumps(b) for b in docs] for docs in block]
                cpu0, started = served.cpu_seconds(), time.perf_counter()
                await asyncio.gather(*(submit(c, sid, bodies)
                                       for c, (sid, _), bodies in zip(connections, sessions, encoded, strict=True)))
                http_s, server_cpu = time.perf_counter() - started, served.cpu_seconds() - cpu0
                raw_s, raw_cpu = in_process([b for docs in block for b in docs], config)
                out.http_s += http_s
                out.server_cpu += server_cpu
                out.raw_s += raw_s
                out.raw_cpu += raw_cpu
                out.rate_ratios.append(raw_s / http_s)
                if server_cpu > 0:
                    out.ratios.append(raw_cpu / server_cpu)
        finally:
            for c in connections:
                c.close()

    run_loop(run())
    return out


async def concurrent(base_url: str, workloads: list[Workload]) -> tuple[float, list[float]]:
    """Every session submits its documents at the same time, back to back on its own connection; wall time and
    each request's latency."""
    latencies: list[float] = []

    async def worker(sid: str, token: str, bodies: list[bytes]) -> None:
        connection = Connection(base_url, token)
        try:
            for body in bodies:
                t0 = time.perf_counter()
                status = await connection.request("POST", f"/s/{sid}/dmp/documents", body)
                latencies.append(time.perf_counter() - t0)
                if status != 201:
                    raise SystemExit(f"benchmark: submission refused: {status}")
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(sid, token, [orjson.dumps(b) for b in bodies]) for sid, token, bodies in workloads))
    return time.perf_counter() - started, latencies


@dataclass
class VendorRun:
    """What the vendor sessions saw: latency per kind of request, requests sent and failed, the wall time."""

    latencies: dict[str, list[float]]
    sent: int
    failed: int
    wall: float


def _lookup_traits(fixtures: dict[str, Any], i: int) -> dict[str, str]:
    matchable = [p for p in fixtures["patients"] if p["scenario"] == "match"]
    return dict(matchable[i % len(matchable)]["registered_traits"])


#: a request of a vendor session: its kind (login, lookup, submission), method, path and JSON body
Step = tuple[str, str, str, bytes | None]


def session_steps(sid: str, fixtures: dict[str, Any], bodies: list[dict[str, Any]]) -> list[Step]:
    """A vendor session's requests in order: the identity provider's discovery document and keys (a login's first
    steps), then for each document the patient's INSi look-up and the submission."""
    steps: list[Step] = [("login", "GET", f"/s/{sid}/idp/.well-known/openid-configuration", None),
                         ("login", "GET", f"/s/{sid}/idp/jwks", None)]
    for i, body in enumerate(bodies):
        steps += [("lookup", "POST", f"/s/{sid}/insi/lookup", orjson.dumps(_lookup_traits(fixtures, i))),
                  ("submission", "POST", f"/s/{sid}/dmp/documents", orjson.dumps(body))]
    return steps


async def vendor_sessions(base_url: str, workloads: list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]],
                          think: float, seed: int) -> VendorRun:
    """Each workload is one vendor's harness session, all at once: discovery of the identity provider and its
    keys (the login's first steps), then per document an INSi look-up of the patient and the submission, with a
    pause between requests (exponential, mean ``think`` s: the vendor's software working between two calls)."""
    import random

    kinds = ("login", "lookup", "submission")
    latencies: dict[str, list[float]] = {k: [] for k in kinds}
    sent = failed = 0

    async def session(n: int, sid: str, token: str, fixtures: dict[str, Any], bodies: list[dict[str, Any]]) -> None:
        nonlocal sent, failed
        rng = random.Random(seed * 100_000 + n)
        steps = session_steps(sid, fixtures, bodies)
        await asyncio.sleep(rng.uniform(0, think))  # the sessions open over time, not at one instant
        connection = Connection(base_url, token)
        try:
            for kind, method, path, payload in steps:
                t0 = time.perf_counter()
                sent += 1
                try:
                    status = await connection.request(method, path, payload)
                except (OSError, h11.ProtocolError):
                    failed += 1
                    connection.close()
                    connection = Connection(base_url, token)
                else:
                    latencies[kind].append(time.perf_counter() - t0)
                    failed += status not in (200, 201)
                await asyncio.sleep(rng.expovariate(1 / think))
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(session(n, *w) for n, w in enumerate(workloads)))
    return VendorRun(latencies, sent, failed, time.perf_counter() - started)


def harness_sessions(admin: httpx.Client, served: Served, k: int, per_session: int, level: str, think: float,
                     seed0: int) -> None:
    """Section 2: k vendor sessions at once with a harness run's pacing; prints offered and achieved rates, latency
    percentiles per kind of request, the server's, the store's and the load generator's CPU per request and the load
    average."""
    workloads = []
    for j in range(k):
        s, t, fx = new_session(admin, served, seed=seed0 + j)
        workloads.append((s, t, fx, documents(fx, per_session, level)))
    steps = 2 + 2 * per_session
    load0, cpu = os.getloadavg()[0], Meter(served)
    run = run_loop(vendor_sessions(served.base_url, workloads, think, seed0))
    used, load1 = cpu.stop(), os.getloadavg()[0]
    every = [x for v in run.latencies.values() for x in v]
    print(f"   {k} sessions of {steps} requests each, think time exponential mean {think:g} s; offered ≈ "
          f"{k / think:.1f} requests/s (sessions / mean think time), achieved {len(every) / run.wall:.1f} requests/s "
          f"over {run.wall:.1f} s ({run.sent} sent, {run.failed} failed); load average {load0:.1f} before, "
          f"{load1:.1f} after")
    for kind, values in [("all", every), *run.latencies.items()]:
        if values:
            print(f"   {kind:<11} p50 {1000 * percentile(values, 50):7.1f} ms  p95 {1000 * percentile(values, 95):7.1f} ms"
                  f"  p99 {1000 * percentile(values, 99):7.1f} ms  max {1000 * max(values):7.1f} ms  ({len(values)})")
    n = max(len(every), 1)
    print(f"   CPU a request (from /proc): sandbox {1000 * used.server / n:.2f} ms, load generator "
          f"{1000 * used.client / n:.2f} ms" + (f", PostgreSQL {1000 * used.store / n:.2f} ms" if used.store else "")
          + f"; bar p95 < 200 ms at 250 sessions: "
          f"{'met' if k >= 250 and percentile(every, 95) < 0.2 else 'NOT met' if k >= 250 else 'n/a'}")


@dataclass
class Used:
    """CPU seconds spent meanwhile: the sandbox's processes, this process (the load generator), PostgreSQL's."""

    server: float
    client: float
    store: float


class Meter:
    """Counts the CPU each side spends from now (Linux /proc and this process's own clock)."""

    def __init__(self, served: Served):
        self.served = served
        self.server0, self.client0, self.store0 = served.cpu_seconds(), time.process_time(), postgres_cpu()

    def stop(self) -> Used:
        return Used(self.served.cpu_seconds() - self.server0, time.process_time() - self.client0,
                    postgres_cpu() - self.store0 if self.served.database else 0.0)


@dataclass
class Pace:
    """How fast real harness sessions send requests, from a run's recorded traces."""

    sessions: int
    requests: int
    gap: float  # mean seconds between two consecutive recorded exchanges of a session
    think: float  # mean gap minus the next request's own time in the sandbox (the pause the model draws)
    median_think: float


def pace_of(bundle: Path) -> Pace:
    """The pace of every test session of a run's ``bundle.zip`` (``usine run --out``): each trace's HTTP exchanges,
    their times (stamped when each answer left) and server durations. Read for timing only, not verified."""
    import datetime as dt
    import json

    gaps: list[float] = []
    thinks: list[float] = []
    sessions = requests = 0
    with zipfile.ZipFile(bundle) as zf:
        for name in sorted(n for n in zf.namelist() if n.startswith("traces/") and n.endswith(".json")):
            jws = json.loads(zf.read(name))
            payload = json.loads(base64.urlsafe_b64decode(jws["payload"] + "=" * (-len(jws["payload"]) % 4)))
            http = [e for e in payload["exchanges"] if e.get("kind") == "http"]
            sessions += 1
            requests += len(http)
            times = [dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in http]
            for earlier, later, exchange in zip(times, times[1:], http[1:], strict=False):
                gaps.append(later - earlier)
                thinks.append(later - earlier - exchange["duration_ms"] / 1000)
    if not gaps:
        raise ValueError("no session of it has two HTTP exchanges")
    if statistics.mean(thinks) <= 0:
        raise ValueError("its sessions' mean pause between two requests is not above zero")
    return Pace(sessions, requests, statistics.mean(gaps), statistics.mean(thinks), statistics.median(thinks))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


Capacity = tuple[int, float, list[float], Used]


def sessions_at_once(admin: httpx.Client, served: Served, k: int, per_session: int, level: str,
                     seed0: int) -> Capacity:
    workloads = []
    for j in range(k):
        s, t, fx = new_session(admin, served, seed=seed0 + j)
        workloads.append((s, t, documents(fx, per_session, level)))
    meter = Meter(served)
    wall, lat = run_loop(concurrent(served.base_url, workloads))
    return len(lat), wall, lat, meter.stop()


def row(k: int, n: int, wall: float, lat: list[float], used: Used) -> str:
    return (f"   {k:>8} {n:>9} {n / wall:>9.1f} {1000 * percentile(lat, 50):>8.1f} {1000 * percentile(lat, 95):>8.1f} "
            f"{1000 * max(lat):>8.1f} {1000 * used.server / n:>9.2f} {1000 * used.store / n:>9.2f} "
            f"{1000 * used.client / n:>9.2f}")


HEADER = (f"   {'sessions':>8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
          f"{'sandbox':>9} {'postgres':>9} {'loadgen':>9}   (CPU ms a request)")


#: ``--compare-tree``: what is sent, by kind — a vendor session's mix (:func:`session_steps` of 8 documents, as
#: section 2's sessions) and each kind of its requests alone
KINDS = ("session", "submission", "lookup", "login")


def _requests_of(kind: str, n: int, sid: str, fixtures: dict[str, Any], bodies: Iterator[dict[str, Any]]) -> list[Step]:
    """``n`` requests of ``kind`` for the session ``sid``, taken from its vendor sessions' requests in order (each
    document of ``bodies`` submitted once: look-ups and logins take none)."""
    out: list[Step] = []
    while len(out) < n:
        submits = kind in ("session", "submission")
        docs = [next(bodies) if submits else {} for _ in range(0 if kind == "login" else 8)]
        steps = session_steps(sid, fixtures, docs)
        out += steps if kind == "session" else [step for step in steps if step[0] == kind]
    return out[:n]


def compare_trees(tree: Path, work: Path, rounds: int, block: int, level: str) -> None:
    """Section 4 (``--compare-tree``): this checkout's sandbox and ``tree``'s served at once (SQLite, one worker each),
    each kind of request (:data:`KINDS`) sent one after the other to one, then the same number to the other, in blocks
    (who goes first swapped each round): the CPU a request of each, read from /proc. Both see the same minutes of
    the machine, whose speed drifts by a quarter within minutes: the ratio is what the code changed."""
    print(f"\n4. this checkout against {tree}: both served at once (SQLite, one worker each), {rounds} rounds of "
          f"{block} requests of each kind to one then the other (the first swapped each round)")
    print(f"   {'kind':<11} {'this ms':>9} {'other ms':>9} {'this/other':>11}   per round: median, range")
    with contextlib.ExitStack() as stack:
        sides = []
        for name, root in (("this", None), ("other", tree)):
            served = stack.enter_context(serve(work / f"compare-{name}", 1, None, tree=root))
            admin = stack.enter_context(httpx.Client(base_url=served.base_url, timeout=60,
                                                     headers={"Authorization": f"Bearer {ADMIN}"}))
            sid, token, fixtures = new_session(admin, served, seed=1)
            http = stack.enter_context(httpx.Client(base_url=served.base_url, timeout=60,
                                                    headers={"Authorization": f"Bearer {token}"}))
            # enough documents: a session's mix submits 8 in 18 requests, the submissions one each, the warm-up 16
            bodies = iter(documents(fixtures, rounds * block * 2 + 28, level))
            warm_up = _requests_of("session", 20, sid, fixtures, bodies)
            sides.append((served, http, warm_up,
                          {kind: _requests_of(kind, rounds * block, sid, fixtures, bodies) for kind in KINDS}))

        def send(http: httpx.Client, step: Step) -> None:
            kind, method, path, body = step
            r = http.request(method, path, content=body,
                             headers={"content-type": "application/json"} if body is not None else None)
            if r.status_code not in (200, 201):
                raise SystemExit(f"benchmark: {kind} refused: {r.status_code} {r.text[:300]}")

        for _, http, warm_up, _ in sides:  # first requests, caches: not counted
            for step in warm_up:
                send(http, step)
        for kind in KINDS:
            cpu: list[list[float]] = [[], []]
            for r in range(rounds):
                for k in ((0, 1) if r % 2 == 0 else (1, 0)):
                    served, http, _, requests = sides[k]
                    before = served.cpu_seconds()
                    for step in requests[kind][r * block:(r + 1) * block]:
                        send(http, step)
                    cpu[k].append((served.cpu_seconds() - before) / block * 1000)
            ratios = [a / b for a, b in zip(cpu[0], cpu[1], strict=True) if b > 0]
            print(f"   {kind:<11} {statistics.mean(cpu[0]):9.3f} {statistics.mean(cpu[1]):9.3f} "
                  f"{sum(cpu[0]) / max(sum(cpu[1]), 1e-9):11.3f}   {statistics.median(ratios):.3f}, "
                  f"{min(ratios):.2f}-{max(ratios):.2f}")


def sequential(admin: httpx.Client, served: Served, n_documents: int, level: str, config: SandboxConfig) -> None:
    """Section 1: ``n_documents`` over HTTP and the same in process, alternated (:func:`alternated`)."""
    sid, token, fixtures = new_session(admin, served, seed=1)
    sample = documents(fixtures, WARM_UP + n_documents, level)
    warm_up, bodies = sample[:WARM_UP], sample[WARM_UP:]
    mean_kib = statistics.mean(len(b["document"]) * 3 / 4 for b in bodies) / 1024
    print(f"\n1. {len(bodies)} documents (mean {mean_kib:.1f} KiB), one after the other")
    seq = alternated(served, sid, token, warm_up, bodies, config)
    http_s, server_cpu, raw_s, raw_cpu = seq.http_s, seq.server_cpu, seq.raw_s, seq.raw_cpu
    http_rate, raw_rate = len(bodies) / http_s, len(bodies) / raw_s
    n = len(bodies)
    print(f"   HTTP API        {http_rate:9.1f} documents/s   ({1000 * http_s / n:.2f} ms each; "
          f"server CPU {1000 * server_cpu / n:.2f} ms each)")
    print(f"   in-process      {raw_rate:9.1f} documents/s   ({1000 * raw_s / n:.2f} ms each; "
          f"CPU {1000 * raw_cpu / n:.2f} ms: parse_xml + sandbox.packs.health.cda)")
    print(f"   HTTP / in-process: {100 * http_rate / raw_rate:.1f} % by wall time, "
          f"{100 * raw_cpu / max(server_cpu, 1e-9):.1f} % by CPU per document (bar: 25 %; "
          "issue-14 baseline: 390/s against 6,400/s, 6 %)")
    if seq.ratios:
        print(f"   ({len(seq.ratios)} blocks alternated, HTTP then in-process, after {WARM_UP} of each "
              f"not counted; by CPU, block by block: {100 * min(seq.ratios):.1f}-"
              f"{100 * max(seq.ratios):.1f} %, median {100 * statistics.median(seq.ratios):.1f} %)")


def intake(admin: httpx.Client, served: Served, n_documents: int, k: int, level: str, config: SandboxConfig) -> None:
    """Section 1b: ``n_documents`` over HTTP from ``k`` sessions at once (:func:`at_capacity`), the same in process,
    alternated block by block: the worker's intake rate when vendors keep it busy, against the in-process rate."""
    per = -(-n_documents // k)
    sessions, warm_up, docs = [], [], []
    for j in range(k):
        sid, token, fixtures = new_session(admin, served, seed=2000 + j)
        sample = documents(fixtures, -(-WARM_UP // k) + per, level)
        sessions.append((sid, token))
        warm_up.append(sample[:-per])
        docs.append(sample[-per:])
    size = max(1, -(-per // BLOCKS))
    blocks = [[d[start:start + size] for d in docs] for start in range(0, per, size)]
    n = per * k
    print(f"\n1b. {n} documents from {k} sessions at once, each submitting back to back on its own connection "
          "(the worker kept busy; the load generator on the same cores)")
    got = at_capacity(served, sessions, warm_up, blocks, config)
    http_rate, raw_rate = n / got.http_s, n / got.raw_s
    print(f"   HTTP API        {http_rate:9.1f} documents/s   (server CPU {1000 * got.server_cpu / n:.2f} ms each)")
    print(f"   in-process      {raw_rate:9.1f} documents/s   (CPU {1000 * got.raw_cpu / n:.2f} ms each)")
    median = statistics.median(got.rate_ratios) if got.rate_ratios else 0.0
    print(f"   HTTP / in-process: {100 * http_rate / raw_rate:.1f} % by rate, {100 * got.raw_cpu / max(got.server_cpu, 1e-9):.1f} "
          f"% by CPU per document; by rate, block by block: {100 * min(got.rate_ratios, default=0):.1f}-"
          f"{100 * max(got.rate_ratios, default=0):.1f} %, median {100 * median:.1f} % (bar: 25 %: "
          f"{'met' if http_rate / raw_rate >= 0.25 else 'NOT met'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=count(0), default=1000,
                        help="documents for the sequential comparison (1000; 0: section 1 left out)")
    parser.add_argument("--intake-sessions", type=count(0), default=8,
                        help="sessions submitting at once in section 1b, the intake at capacity (8; 0: left out)")
    parser.add_argument("--sessions", type=counts(), default=[1, 16, 250],
                        help="concurrent session counts, comma-separated (1,16,250; '': section 2b left out)")
    parser.add_argument("--per-session", type=count(), default=8, help="documents each concurrent session submits (8)")
    parser.add_argument("--vendors", type=counts(), default=[250],
                        help="vendor sessions at once with pacing, comma-separated (250; '': section 2 left out)")
    parser.add_argument("--think", type=positive, default=0.108, help="mean pause between a session's requests, s "
                        "(0.108: measured on the reference vendor's 2027-W2 HOSPITAL run, see above)")
    parser.add_argument("--think-from", type=Path, metavar="BUNDLE",
                        help="measure the pause on a run's bundle.zip (usine run --out DIR) and use it")
    parser.add_argument("--level", choices=["1", "3", "mixed"], default="mixed", help="CDA level of the documents")
    parser.add_argument("--xsd", type=Path, help="validate against this CDA.xsd too (both sides: --schema cda=PATH)")
    parser.add_argument("--workers", type=counts(), default=[1],
                        help="worker counts to compare, comma-separated (1; 1,2 needs --database)")
    parser.add_argument("--database", help="postgresql://… shared store (default: SQLite in the state folder)")
    parser.add_argument("--threads", type=count(),
                        help="threads of each worker (usine sandbox serve --threads; its default when not given)")
    parser.add_argument("--compare-tree", type=Path, metavar="DIR",
                        help="also compare, request by request, with another checkout's sandbox (section 4)")
    parser.add_argument("--rounds", type=count(), default=20, help="rounds of --compare-tree (20)")
    parser.add_argument("--block", type=count(), default=108, help="requests of each kind a round and side (108)")
    args = parser.parse_args(argv)
    if args.compare_tree is not None and not (args.compare_tree / "sandbox" / "server.py").is_file():
        parser.error(f"--compare-tree {args.compare_tree}: not a checkout of usine (no sandbox/server.py)")
    if not args.workers:
        parser.error("--workers: no worker count given")
    if max(args.workers) > 1 and not args.database:
        parser.error(f"--workers {max(args.workers)}: several workers share a PostgreSQL store, give --database "
                     "postgresql://…")
    if not (args.documents or args.vendors or args.sessions or args.compare_tree):
        parser.error("nothing to measure: --documents 0, --vendors '' and --sessions '' and no --compare-tree")
    if len(args.workers) > 1 and not args.sessions:
        parser.error("--workers: comparing worker counts measures --sessions' largest load; --sessions is empty")
    sessions: list[int] = args.sessions
    if args.think_from:
        try:
            pace = pace_of(args.think_from)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:  # JSON errors are ValueErrors
            parser.error(f"--think-from {args.think_from}: not a run's bundle.zip with traces to time ({exc})")
        args.think = pace.think
        print(f"pace of {args.think_from}: {pace.sessions} sessions, {pace.requests} requests, mean gap "
              f"{pace.gap:.3f} s ({1 / pace.gap:.1f} requests/s a session), think {pace.think:.3f} s (median "
              f"{pace.median_think:.3f} s): --think {pace.think:.3f}")
    worker_counts: list[int] = args.workers
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; store "
          f"{'PostgreSQL' if args.database else 'SQLite'}; level={args.level} xsd={'on' if args.xsd else 'off'}; threads a "
          f"worker {args.threads or SandboxConfig(Path('.'), database=args.database).loop_threads() or 'anyio default'}")

    with tempfile.TemporaryDirectory(prefix="usine-bench-") as tmp:
        config = SandboxConfig(data_dir=Path(tmp), schemas={cda.CDA_SCHEMA.name: args.xsd} if args.xsd else {})
        largest: dict[int, Capacity] = {}
        for w_i, workers in enumerate(worker_counts):
            data = Path(tmp) / f"w{workers}"
            with serve(data, workers, args.database, xsd=args.xsd, threads=args.threads) as served, \
                    httpx.Client(base_url=served.base_url, timeout=60,
                                 headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
                print(f"\n== {workers} worker(s): {served.base_url}")
                if w_i == 0:
                    if args.documents:
                        sequential(admin, served, args.documents, args.level, config)
                        if args.intake_sessions:
                            intake(admin, served, args.documents, args.intake_sessions, args.level, config)
                    if args.vendors:
                        print("\n2. vendor sessions at once, each a harness session with a harness run's pacing")
                    for v_i, vendors in enumerate(args.vendors):
                        harness_sessions(admin, served, vendors, args.per_session, args.level, args.think,
                                         500_000 + 10_000 * v_i)
                    if sessions:
                        print(f"\n2b. capacity: concurrent sessions with zero think time (closed loop: the box "
                              f"saturated), {args.per_session} documents each")
                        print(HEADER)
                    for i, k in enumerate(sessions):
                        result = sessions_at_once(admin, served, k, args.per_session, args.level, 1000 * (i + 1))
                        print(row(k, *result))
                        largest[workers] = result
                    continue
                result = sessions_at_once(admin, served, sessions[-1], args.per_session, args.level, 90_000 * workers)
                largest[workers] = result
        if len(worker_counts) > 1:
            print(f"\n3. {sessions[-1]} sessions at once, by worker count")
            print(HEADER.replace("sessions", " workers"))
            for workers, (n, wall, lat, used) in largest.items():
                print(row(workers, n, wall, lat, used))
            base_n, base_wall, _, base_used = largest[worker_counts[0]]
            for workers, (n, wall, _, used) in largest.items():
                if workers != worker_counts[0]:
                    print(f"   {workers} workers / {worker_counts[0]}: {(n / wall) / (base_n / base_wall):.2f}x requests "
                          f"per second (wall clock); {(n / used.server) / (base_n / base_used.server):.2f}x requests "
                          "per sandbox-CPU-second. Where the cores went (CPU seconds a wall second, of "
                          f"{os.cpu_count()}): sandbox {used.server / wall:.2f} against {base_used.server / base_wall:.2f}, "
                          f"PostgreSQL {used.store / wall:.2f} against {base_used.store / base_wall:.2f}, load generator "
                          f"{used.client / wall:.2f} against {base_used.client / base_wall:.2f}")
            busy = (base_used.server + base_used.store + base_used.client) / base_wall
            print(f"   the most any worker count can gain here: {os.cpu_count()} cores / {busy:.2f} cores busy with "
                  f"{worker_counts[0]} worker(s) (sandbox, PostgreSQL and load generator, each request's work the "
                  f"same) = {(os.cpu_count() or 1) / busy:.2f}x")
        if args.compare_tree is not None:
            compare_trees(args.compare_tree.resolve(), Path(tmp), args.rounds, args.block, args.level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
