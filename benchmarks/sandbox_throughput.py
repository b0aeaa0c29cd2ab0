"""Sandbox throughput: documents accepted per second over HTTP against the same validation in process; concurrent
vendor sessions; one worker process against several over a shared store.

A script, not a test. The sandbox runs as ``usine sandbox serve`` in its own process(es) (``--workers``, with
``--database`` PostgreSQL for more than one), as an agency runs it; this process is the vendors' side. Printed:

1. N documents submitted one after the other through ``POST /s/{sid}/dmp/documents`` (httpx, keep-alive), and
   the same documents validated in this process (base64 decode, ``parse_xml``, ``sandbox.packs.health.cda``):
   both rates, their ratio (the bar: HTTP at least 25 % of in-process on one worker), and the sandbox's own CPU
   time per document (read from /proc: what a request costs the server, whatever else runs on the machine);
2. 250 concurrent vendor sessions (``--vendors``), the bar of issue 14. A *concurrent vendor session* is what
   a harness run is while it lasts: one test session with its own access token and its own connection, that
   fetches the identity provider's discovery document and keys (a login's first steps), then for each of its
   documents looks the patient's INS up (``POST /s/{sid}/insi/lookup``) and submits the document, pausing
   between two requests (exponential, mean ``--think``, default 0.35 s: the pace of a real harness run — the
   2026-W1 HOSPITAL run of the reference vendor sends e.g. 17 requests in 6 s in its patient look-up scenario,
   the driver working between them); the sessions open at random instants within the first
   think time, not at one instant. Printed: offered rate (sessions / mean think time), achieved rate,
   p50/p95/p99/max per kind of request, the sandbox's CPU per request (its own time) and the load average;
   2b. capacity, printed too: 1, 16, 250… sessions with zero think time, each submitting its documents back to
   back (a closed loop that saturates the 2 cores the load generator shares): requests per second at most;
3. with ``--workers 1,2``: section 2b's largest load against each worker count (the gain of the second worker).

    python benchmarks/sandbox_throughput.py                                   # SQLite, one worker
    python benchmarks/sandbox_throughput.py --workers 1,2 --database postgresql://usine_ci:usine_ci@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conformity.xmlsafe import parse_xml  # noqa: E402
from sandbox.config import SandboxConfig  # noqa: E402
from sandbox.packs.health import cda, samples  # noqa: E402
from sandbox.server import child_server, free_port  # noqa: E402
from sandbox.store import open_store  # noqa: E402

TYPES = ("34106-7", "11502-2", "60591-5", "18748-4", "60593-1")
ADMIN = "bench-admin-" + uuid.uuid4().hex
# One TLS context for every client: httpx builds one per client otherwise (the CA bundle loaded again, ~70 ms of
# this process's CPU each), which for 250 sessions opening at once blocked the load generator's event loop for
# seconds and was counted as the sandbox's latency.
CLIENT_TLS = ssl.create_default_context()


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
          xsd: Path | None = None) -> Iterator[Served]:
    port = free_port()
    command = [sys.executable, "-m", "conformity", "sandbox", "serve", "--port", str(port), "--data", str(data_dir),
               "--workers", str(workers)] + (["--database", database] if database else []) + (
               ["--schema", f"{cda.CDA_SCHEMA.name}={xsd}"] if xsd else [])
    env = {**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": ADMIN}
    url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    started = False
    with log_path.open("wb") as log:
        try:
            with child_server(command, lambda: httpx.get(url + "/health", timeout=2).status_code == 200, timeout=60,
                              env=env, log=log) as process:
                started = True
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


def over_http(served: Served, sid: str, token: str, bodies: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds to submit the bodies one after the other, and the server's CPU seconds meanwhile."""
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        http.get("/health")
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


Workload = tuple[str, str, list[dict[str, Any]]]


async def concurrent(base_url: str, workloads: list[Workload]) -> tuple[float, list[float]]:
    """Every session submits its documents at the same time; wall time and each request's latency."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def worker(sid: str, token: str, bodies: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=120, limits=limits, verify=CLIENT_TLS) as http:
            for body in bodies:
                t0 = time.perf_counter()
                r = await http.post(f"/s/{sid}/dmp/documents", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    raise SystemExit(f"benchmark: submission refused: {r.status_code} {r.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(*w) for w in workloads))
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
        steps: list[tuple[str, str, str, dict[str, Any] | None]] = [
            ("login", "GET", f"/s/{sid}/idp/.well-known/openid-configuration", None),
            ("login", "GET", f"/s/{sid}/idp/jwks", None)]
        for i, body in enumerate(bodies):
            steps += [("lookup", "POST", f"/s/{sid}/insi/lookup", _lookup_traits(fixtures, i)),
                      ("submission", "POST", f"/s/{sid}/dmp/documents", body)]
        await asyncio.sleep(rng.uniform(0, think))  # the sessions open over time, not at one instant
        async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120,
                                     limits=httpx.Limits(max_connections=1), verify=CLIENT_TLS) as http:
            for kind, method, path, payload in steps:
                t0 = time.perf_counter()
                sent += 1
                try:
                    r = await http.request(method, path, json=payload)
                except httpx.HTTPError:
                    failed += 1
                else:
                    latencies[kind].append(time.perf_counter() - t0)
                    failed += r.status_code not in (200, 201)
                await asyncio.sleep(rng.expovariate(1 / think))

    started = time.perf_counter()
    await asyncio.gather(*(session(n, *w) for n, w in enumerate(workloads)))
    return VendorRun(latencies, sent, failed, time.perf_counter() - started)


def harness_sessions(admin: httpx.Client, served: Served, k: int, per_session: int, level: str, think: float,
                     seed0: int) -> None:
    """Section 2: k vendor sessions at once with realistic pacing; prints offered and achieved rates, latency
    percentiles per kind of request, the server's CPU per request and the load average."""
    workloads = []
    for j in range(k):
        s, t, fx = new_session(admin, served, seed=seed0 + j)
        workloads.append((s, t, fx, documents(fx, per_session, level)))
    steps = 2 + 2 * per_session
    load0, cpu0 = os.getloadavg()[0], served.cpu_seconds()
    run = asyncio.run(vendor_sessions(served.base_url, workloads, think, seed0))
    cpu, load1 = served.cpu_seconds() - cpu0, os.getloadavg()[0]
    every = [x for v in run.latencies.values() for x in v]
    print(f"   {k} sessions of {steps} requests each, think time exponential mean {think:g} s; offered ≈ "
          f"{k / think:.1f} requests/s (sessions / mean think time), achieved {len(every) / run.wall:.1f} requests/s "
          f"over {run.wall:.1f} s ({run.sent} sent, {run.failed} failed); load average {load0:.1f} before, "
          f"{load1:.1f} after")
    for kind, values in [("all", every), *run.latencies.items()]:
        if values:
            print(f"   {kind:<11} p50 {1000 * percentile(values, 50):7.1f} ms  p95 {1000 * percentile(values, 95):7.1f} ms"
                  f"  p99 {1000 * percentile(values, 99):7.1f} ms  max {1000 * max(values):7.1f} ms  ({len(values)})")
    print(f"   server CPU {1000 * cpu / max(len(every), 1):.2f} ms a request (its own time, from /proc); bar p95 < 200 ms "
          f"at 250 sessions: {'met' if k >= 250 and percentile(every, 95) < 0.2 else 'NOT met' if k >= 250 else 'n/a'}")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def sessions_at_once(admin: httpx.Client, served: Served, k: int, per_session: int, level: str,
                     seed0: int) -> tuple[int, float, list[float], float]:
    workloads = []
    for j in range(k):
        s, t, fx = new_session(admin, served, seed=seed0 + j)
        workloads.append((s, t, documents(fx, per_session, level)))
    cpu0 = served.cpu_seconds()
    wall, lat = asyncio.run(concurrent(served.base_url, workloads))
    return len(lat), wall, lat, served.cpu_seconds() - cpu0


def row(k: int, n: int, wall: float, lat: list[float], cpu: float) -> str:
    return (f"   {k:>8} {n:>9} {n / wall:>9.1f} {1000 * percentile(lat, 50):>8.1f} {1000 * percentile(lat, 95):>8.1f} "
            f"{1000 * max(lat):>8.1f} {1000 * cpu / n:>12.2f}")


HEADER = f"   {'sessions':>8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'server CPU ms':>12}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1000, help="documents for the sequential comparison (1000)")
    parser.add_argument("--sessions", default="1,16,250", help="concurrent session counts, comma-separated (1,16,250)")
    parser.add_argument("--per-session", type=int, default=8, help="documents each concurrent session submits (8)")
    parser.add_argument("--vendors", default="250", help="vendor sessions at once with pacing, comma-separated (250)")
    parser.add_argument("--think", type=float, default=0.35, help="mean pause between a session's requests, s (0.35: "
                                                                  "a harness run's pace)")
    parser.add_argument("--level", choices=["1", "3", "mixed"], default="mixed", help="CDA level of the documents")
    parser.add_argument("--xsd", type=Path, help="validate against this CDA.xsd too (both sides: --schema cda=PATH)")
    parser.add_argument("--workers", default="1", help="worker counts to compare, comma-separated (1; 1,2 needs "
                                                       "--database)")
    parser.add_argument("--database", help="postgresql://… shared store (default: SQLite in the state folder)")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.sessions.split(",") if c.strip()]
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; store "
          f"{'PostgreSQL' if args.database else 'SQLite'}; level={args.level} xsd={'on' if args.xsd else 'off'}")

    with tempfile.TemporaryDirectory(prefix="usine-bench-") as tmp:
        config = SandboxConfig(data_dir=Path(tmp), schemas={cda.CDA_SCHEMA.name: args.xsd} if args.xsd else {})
        largest: dict[int, tuple[int, float, list[float], float]] = {}
        for w_i, workers in enumerate(worker_counts):
            data = Path(tmp) / f"w{workers}"
            with serve(data, workers, args.database, xsd=args.xsd) as served, \
                    httpx.Client(base_url=served.base_url, timeout=60,
                                 headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
                print(f"\n== {workers} worker(s): {served.base_url}")
                if w_i == 0:
                    sid, token, fixtures = new_session(admin, served, seed=1)
                    bodies = documents(fixtures, args.documents, args.level)
                    mean_kib = statistics.mean(len(b["document"]) * 3 / 4 for b in bodies) / 1024
                    print(f"\n1. {len(bodies)} documents (mean {mean_kib:.1f} KiB), one after the other")
                    http_s, server_cpu = over_http(served, sid, token, bodies)
                    raw_s, raw_cpu = in_process(bodies, config)
                    http_rate, raw_rate = len(bodies) / http_s, len(bodies) / raw_s
                    n = len(bodies)
                    print(f"   HTTP API        {http_rate:9.1f} documents/s   ({1000 * http_s / n:.2f} ms each; "
                          f"server CPU {1000 * server_cpu / n:.2f} ms each)")
                    print(f"   in-process      {raw_rate:9.1f} documents/s   ({1000 * raw_s / n:.2f} ms each; "
                          f"CPU {1000 * raw_cpu / n:.2f} ms: parse_xml + sandbox.packs.health.cda)")
                    print(f"   HTTP / in-process: {100 * http_rate / raw_rate:.1f} % by wall time, "
                          f"{100 * raw_cpu / max(server_cpu, 1e-9):.1f} % by CPU per document (bar: 25 %; "
                          "issue-14 baseline: 390/s against 6,400/s, 6 %)")
                    print("\n2. vendor sessions at once, each a harness session with a harness run's pacing")
                    for v_i, vendors in enumerate(int(v) for v in args.vendors.split(",") if v.strip()):
                        harness_sessions(admin, served, vendors, args.per_session, args.level, args.think,
                                         500_000 + 10_000 * v_i)
                    print(f"\n2b. capacity: concurrent sessions with zero think time (closed loop: the box saturated), "
                          f"{args.per_session} documents each")
                    print(HEADER)
                    for i, k in enumerate(counts):
                        result = sessions_at_once(admin, served, k, args.per_session, args.level, 1000 * (i + 1))
                        print(row(k, *result))
                        largest[workers] = result
                    continue
                result = sessions_at_once(admin, served, counts[-1], args.per_session, args.level, 90_000 * workers)
                largest[workers] = result
        if len(worker_counts) > 1:
            print(f"\n3. {counts[-1]} sessions at once, by worker count")
            print(HEADER.replace("sessions", " workers"))
            for workers, (n, wall, lat, cpu) in largest.items():
                print(row(workers, n, wall, lat, cpu))
            base = largest[worker_counts[0]]
            for workers, (n, wall, _, _) in largest.items():
                if workers != worker_counts[0]:
                    print(f"   {workers} workers / {worker_counts[0]}: {(n / wall) / (base[0] / base[1]):.2f}x requests "
                          "per second (2 CPUs shared with the load generator, this process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
