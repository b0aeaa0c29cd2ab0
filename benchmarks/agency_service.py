"""Benchmark: a wave deadline at the agency service — bundles verified per upload, page latency under load.

Loopback only. One real run of the reference vendor is made against a local sandbox; the same run is
then submitted N times (default 250: a wave's vendors in the last hour), each copy repackaged (another
zip comment, so other bytes: each one is verified in full — hashes, signatures, every check re-run —
and then found to be the recorded run). Figures:

* per upload, the service's time to receive, verify and decide (``POST /api/v1/submissions`` answered
  after verification), against the raw baseline: ``verify_bundle`` alone, in this process;
* page latency with C concurrent users (default 50) on ``usine agency serve --workers W`` (default 2). A
  *concurrent user* here is what load tools (Locust, JMeter, k6) mean by one: a person with a browser
  session open on the service, reading a page, thinking, then asking for the next one — not a client that
  fires requests back to back. Each user has their own connection, arrives at a random instant within the
  first think time, and pauses an exponential think time (mean ``--think``, default 5 s: a human reading a
  registry or a submission) between pages, for ``--duration`` seconds; ``--reviewers`` of them (default 10)
  are signed-in reviewers going through their queue and a submission, the others browse the public pages.
  Printed: the offered rate (users / mean think time), the achieved rate, p50/p95/p99/max, the app's own
  time per page (``Server-Timing``, which the service adds when ``USINE_SERVE_SERVER_TIMING=1``) and the
  load average — the bar is judged on this;
* capacity, printed too so nothing is hidden: the same C clients with zero think time firing
  ``--requests`` back to back (a closed loop that saturates the 2 cores the load generator shares): the
  most requests per second the service answers, against the raw baseline ``/healthz`` under the same
  loop; latencies there are queueing for a CPU, not what a page costs.

Targets (issue 13): under 1 s per bundle; p95 under 200 ms with 50 concurrent users.

    .venv/bin/python benchmarks/agency_service.py [--uploads 250] [--users 50] [--requests 2000] [--workers 2] [--think 5] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from arguments import count, positive  # noqa: E402

if TYPE_CHECKING:
    import httpx

    from conformity.catalog import Catalog

PASSWORD = "benchmark password 1234"


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(values: list[float], p: float) -> str:
    return f"{_pct(values, p) * 1000:.0f} ms"


def _copy(bundle: Path, to: Path, n: int) -> Path:
    """The same run in other bytes (a zip comment numbered n)."""
    with zipfile.ZipFile(bundle) as zf, zipfile.ZipFile(to, "w", zipfile.ZIP_DEFLATED) as out:
        for name in zf.namelist():
            out.writestr(name, zf.read(name))
        out.comment = f"copy {n}".encode()
    return to


def make_run(work: Path, catalog: Catalog) -> tuple[Path, Path]:
    """A real run of the reference vendor (wave 2026-W1 HOSPITAL): its bundle and the sandbox's trace key."""
    from conformity.harness.evidence import collect, vendor_sources
    from conformity.harness.outputs import run_to_end, write_outputs
    from conformity.harness.plan import make_plan
    from conformity.harness.runner import Runner
    from conformity.harness.sandbox_access import start_local
    from conformity.harness.vendor import load_vendor

    vendor = load_vendor(ROOT / "examples" / "vendors" / "health" / "reference" / "vendor.toml")
    plan = make_plan(catalog, "2026-W1", "HOSPITAL", ())
    evidence, _ = collect(catalog, plan, vendor_sources(vendor.evidence))
    with start_local(work / "sandbox") as access:
        result = run_to_end(Runner(plan, vendor, None, access, evidence))  # the sandbox's seed: a run to label
    return write_outputs(work / "run", result)["bundle.zip"], work / "sandbox" / "keys" / "trace-signing.pub.pem"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=count(), default=250)
    parser.add_argument("--users", type=count(), default=50)
    parser.add_argument("--requests", type=count(2), default=2000)
    parser.add_argument("--workers", type=count(), default=2)
    parser.add_argument("--think", type=positive, default=5.0, help="a user's mean think time between pages, s (5)")
    parser.add_argument("--duration", type=positive, default=60.0, help="seconds the users browse (60)")
    parser.add_argument("--reviewers", type=count(0), default=10, help="users who are signed-in reviewers (10)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.reviewers > args.users:
        parser.error(f"--reviewers {args.reviewers}: more than the --users ({args.users}) they are part of")

    import httpx

    from conformity.agency.registry import Registry
    from conformity.agency.service import ServiceConfig, accounts, create_app
    from conformity.agency.verify import verify_bundle
    from conformity.catalog import load_catalog
    from conformity.checks import registered_check_ids
    from conformity.db.connection import Database
    from conformity.plugins import register_all
    from conformity.signing import KeyRing

    register_all()
    catalog = load_catalog(registered_checks=registered_check_ids())
    work = Path(tempfile.mkdtemp(prefix="usine-bench-agency-"))
    home = work / "home"
    os.environ["USINE_HOME"] = str(home)
    t0 = time.perf_counter()
    bundle, trust = make_run(work, catalog)
    print(f"one real run of the reference vendor: {time.perf_counter() - t0:.1f} s; bundle "
          f"{bundle.stat().st_size / 1024:.0f} KiB")
    keys = KeyRing.from_paths([trust])

    registry = home / "agency" / "registry.sqlite3"
    config = ServiceConfig(database=Database(registry), catalog=catalog, trust=keys,
                           key_path=home / "agency" / "agency-key.pem", data=work / "service", background=False)
    app = create_app(config)
    with Registry(config.database) as reg:
        acct = accounts.create_account(reg.db, "ref", "Reference", "vendor", vendor_id="usine-reference")
        token = accounts.create_token(reg.db, acct, "bench")
        accounts.create_account(reg.db, "alice", "Alice", "reviewer", password=PASSWORD)
    copies = [_copy(bundle, work / f"copy-{i}.zip", i) for i in range(args.uploads)]

    # ---- uploads: raw baseline (verify_bundle in this process), then through the service (in process, ASGI)
    raw = []
    for c in copies[: min(20, len(copies))]:
        t = time.perf_counter()
        assert verify_bundle(c, catalog, keys).ok
        raw.append(time.perf_counter() - t)
    from fastapi.testclient import TestClient

    served = []
    with TestClient(app, base_url="https://bench") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for c in copies:
            t = time.perf_counter()
            r = client.post("/api/v1/submissions", content=c.read_bytes(), headers={"Content-Type": "application/zip"})
            served.append(time.perf_counter() - t)
            assert r.status_code == 202 and r.json()["state"] == "verified", r.text[:300]
    print(f"\nuploads: {len(served)} bundles received, verified and decided one after another "
          f"({sum(served):.1f} s: {len(served) / sum(served) * 3600:,.0f} an hour on one worker)")
    print(f"  per bundle: median {statistics.median(served) * 1000:.0f} ms, p95 {_pct(served, 95) * 1000:.0f} ms, "
          f"max {max(served) * 1000:.0f} ms   (target < 1000 ms: {'met' if _pct(served, 95) < 1 else 'NOT met'})")
    print(f"  raw baseline verify_bundle: median {statistics.median(raw) * 1000:.0f} ms   "
          f"(service / raw: {statistics.median(served) / statistics.median(raw):.2f}×)")

    # ---- pages under load: usine agency serve --workers W, C concurrent users
    log = work / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "conformity", "agency", "serve", "--port", str(port), "--trust",
                             str(trust), "--workers", str(args.workers), "--insecure-cookies"], cwd=ROOT,
                            env={**os.environ, "USINE_SERVE_SERVER_TIMING": "1"}, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the service did not start") from None
                time.sleep(0.2)
        with Registry(config.database) as reg:
            sub = reg.submissions()[0].id
        staff = httpx.Client(base_url=base)
        form = staff.get("/login").text
        field = re.search(r'name="csrf" value="([^"]+)"', form)
        if field is None:
            raise SystemExit("the login page carries no CSRF token")
        csrf = field.group(1)
        staff.post("/login", data={"login": "alice", "password": PASSWORD, "csrf": csrf})
        cookie = staff.cookies.get("usine_session")
        public = ["/registry", "/registry?vendor=usine-reference&state=valid", "/api/v1/registry", "/revocations",
                  "/waves", "/api/v1/events?after=0", "/"]
        staff_pages = [f"/staff/submissions/{sub}", "/staff"]
        pages = public + staff_pages
        load_before = os.getloadavg()
        users_lat, users_app, sent, users_failed = asyncio.run(_users(
            base, public, staff_pages, args.users, args.reviewers, args.think, args.duration, cookie, args.seed))
        load_users = os.getloadavg()
        raw_lat, _, raw_wall, raw_failed = asyncio.run(_load(base, ["/healthz"], args.users, args.requests // 2, cookie))
        lat, app_time, wall, failed = asyncio.run(_load(base, pages, args.users, args.requests, cookie))
        load_after = os.getloadavg()
    finally:
        proc.terminate()
        proc.wait(10)
    server_log = log.read_text(errors="replace")
    no_response = server_log.count("ASGI callable returned without starting response")
    all_users = [x for v in users_lat.values() for x in v]
    all_users_app = [x for v in users_app.values() for x in v]
    offered = args.users / args.think
    print(f"\npages, {args.users} concurrent users ({args.reviewers} reviewers on their queue and a submission, "
          f"{args.users - args.reviewers} visitors on the public pages), each reading a page then thinking "
          f"(exponential, mean {args.think:g} s) for {args.duration:g} s; usine agency serve --workers {args.workers}; "
          f"load average {load_before[0]:.1f} before, {load_users[0]:.1f} after; {os.cpu_count()} cores")
    print(f"  offered ≈ {offered:.1f} requests/s (users / mean think time); achieved "
          f"{len(all_users) / args.duration:.1f} requests/s ({sent} sent, {users_failed} failed)")
    print(f"  all pages: p50 {ms(all_users, 50)}, p95 {ms(all_users, 95)}, p99 {ms(all_users, 99)}, "
          f"max {max(all_users) * 1000:.0f} ms   (target p95 < 200 ms with 50 concurrent users: "
          f"{'met' if _pct(all_users, 95) < 0.2 else 'NOT met'})")
    for page, v in users_lat.items():
        if v:
            a = users_app[page] or [float("nan")]
            print(f"    {page:<50} p50 {_pct(v, 50) * 1000:6.1f} ms  p95 {_pct(v, 95) * 1000:6.1f} ms  ({len(v)});  "
                  f"app p50 {_pct(a, 50) * 1000:5.1f} ms  p95 {_pct(a, 95) * 1000:5.1f} ms")
    if all_users_app:
        print(f"  the app's own time (Server-Timing): p50 {_pct(all_users_app, 50) * 1000:.1f} ms, "
              f"p95 {_pct(all_users_app, 95) * 1000:.1f} ms, p99 {_pct(all_users_app, 99) * 1000:.1f} ms")
    all_lat = [x for v in lat.values() for x in v]
    all_app = [x for v in app_time.values() for x in v]
    raw_all = [x for v in raw_lat.values() for x in v]
    print(f"\ncapacity ({args.users} clients, zero think time, {args.requests} requests back to back: a saturated "
          f"box, not users; load average {load_after[0]:.1f} after)")
    print(f"  pages: {len(all_lat) / wall:.0f} requests/s at most ({failed} failed); latency p50 {ms(all_lat, 50)}, "
          f"p95 {ms(all_lat, 95)}, p99 {ms(all_lat, 99)} (queueing); app p50 {_pct(all_app, 50) * 1000:.1f} ms, "
          f"p95 {_pct(all_app, 95) * 1000:.1f} ms")
    print(f"  raw baseline /healthz: {len(raw_all) / raw_wall:.0f} requests/s at most ({raw_failed} failed); "
          f"p50 {ms(raw_all, 50)}, p95 {ms(raw_all, 95)} (pages / raw, requests/s: "
          f"{(len(all_lat) / wall) / (len(raw_all) / raw_wall):.2f}×)")
    print(f"  server log: {no_response} 'ASGI callable returned without starting response'")
    print(f"\n(work folder {work})")
    return 0


Latencies = dict[str, list[float]]


def _server_time(response: httpx.Response) -> float | None:
    """The app's own time from ``Server-Timing: app;dur=…`` (seconds), when the service sent it."""
    timing = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    return float(timing.group(1)) / 1000 if timing else None


async def _load(base: str, pages: list[str], users: int, total: int,
                cookie: str | None) -> tuple[Latencies, Latencies, float, int]:
    """Capacity: ``users`` clients firing ``total`` requests back to back (zero think time, a closed loop that
    saturates the box). Latency and app time per page, the wall time, and the failures."""
    import httpx

    out: Latencies = {p: [] for p in pages}
    app: Latencies = {p: [] for p in pages}
    counter = iter(range(total))
    failures = 0

    async def user(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for i in counter:
            page = pages[i % len(pages)]
            t = time.perf_counter()
            try:
                r = await client.get(page)
            except httpx.HTTPError:
                failures += 1
                continue
            out[page].append(time.perf_counter() - t)
            if r.status_code != 200:
                failures += 1
            own = _server_time(r)
            if own is not None:
                app[page].append(own)

    limits = httpx.Limits(max_connections=users)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 cookies={"usine_session": cookie} if cookie else None) as client:
        await asyncio.gather(*(user(client) for _ in range(users)))
    return out, app, time.perf_counter() - started, failures


async def _users(base: str, public: list[str], staff: list[str], users: int, reviewers: int, think: float,
                 duration: float, cookie: str | None, seed: int) -> tuple[Latencies, Latencies, int, int]:
    """``users`` people at once, each with their own browser connection, each reading a page, thinking
    (exponential, mean ``think`` s), reading the next one, for ``duration`` s; ``reviewers`` of them are
    signed-in reviewers going through their queue and submissions, the others browse the public pages.
    Latency and app time per page, the requests sent, and the failures (transport errors, non-200)."""
    import random
    import ssl

    import httpx

    # one TLS context for all: httpx builds one per client otherwise (~70 ms of this process's CPU each, the
    # event loop blocked meanwhile and counted as other users' latency)
    tls = ssl.create_default_context()
    out: Latencies = {p: [] for p in public + staff}
    app: Latencies = {p: [] for p in public + staff}
    sent = failures = 0
    stop = time.perf_counter() + duration

    async def person(n: int) -> None:
        nonlocal sent, failures
        rng = random.Random(seed * 1000 + n)
        reviewer = n < reviewers
        walk = public + staff if reviewer else public
        await asyncio.sleep(rng.uniform(0, think))  # people arrive over time, not at one instant
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=1), verify=tls,
                                     cookies={"usine_session": cookie} if reviewer and cookie else None) as client:
            while time.perf_counter() < stop:
                page = rng.choice(walk)
                t = time.perf_counter()
                sent += 1
                try:
                    r = await client.get(page)
                except httpx.HTTPError:
                    failures += 1
                else:
                    out[page].append(time.perf_counter() - t)
                    failures += r.status_code != 200
                    own = _server_time(r)
                    if own is not None:
                        app[page].append(own)
                await asyncio.sleep(rng.expovariate(1 / think))

    await asyncio.gather(*(person(n) for n in range(users)))
    return out, app, sent, failures


if __name__ == "__main__":
    raise SystemExit(main())
