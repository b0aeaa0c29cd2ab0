"""Benchmark: a wave deadline at the agency service — bundles verified per upload, page latency under load.

Loopback only. One real run of the reference vendor is made against a local sandbox; the same run is
then submitted N times (default 250: a wave's vendors in the last hour), each copy repackaged (another
zip comment, so other bytes: each one is verified in full — hashes, signatures, every check re-run —
and then found to be the recorded run). Figures:

* per upload, the service's time to receive, verify and decide (``POST /api/v1/submissions`` answered
  after verification), against the raw baseline: ``verify_bundle`` alone, in this process;
* page latency with C concurrent users (default 50) on the public pages and a reviewer's queue, served by
  ``usine agency serve --workers W`` (default 2), against the raw baseline: ``/healthz`` under the same load;
  with the app's own time per page (``Server-Timing``, which the service adds when
  ``USINE_SERVE_SERVER_TIMING=1``): the rest is queueing for a worker and the load generator's own time on
  the same cores. The machine's load average is printed with the figures.

Targets (issue 13): under 1 s per bundle; p95 under 200 ms with 50 concurrent users.

    .venv/bin/python benchmarks/agency_service.py [--uploads 250] [--users 50] [--requests 2000] [--workers 2]
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PASSWORD = "benchmark password 1234"


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _copy(bundle: Path, to: Path, n: int) -> Path:
    """The same run in other bytes (a zip comment numbered n)."""
    with zipfile.ZipFile(bundle) as zf, zipfile.ZipFile(to, "w", zipfile.ZIP_DEFLATED) as out:
        for name in zf.namelist():
            out.writestr(name, zf.read(name))
        out.comment = f"copy {n}".encode()
    return to


def make_run(work: Path, catalog: object) -> tuple[Path, Path]:
    """A real run of the reference vendor (wave 2026-W1 HOSPITAL): its bundle and the sandbox's trace key."""
    from conformity.harness.evidence import collect, vendor_sources
    from conformity.harness.outputs import run_to_end, write_outputs
    from conformity.harness.plan import make_plan
    from conformity.harness.runner import Runner
    from conformity.harness.sandbox_access import start_local
    from conformity.harness.vendor import load_vendor

    vendor = load_vendor(ROOT / "examples" / "vendors" / "health" / "reference" / "vendor.toml")
    plan = make_plan(catalog, "2026-W1", "HOSPITAL", ())  # type: ignore[arg-type]
    evidence, _ = collect(catalog, plan, vendor_sources(vendor.evidence))  # type: ignore[arg-type]
    with start_local(work / "sandbox") as access:
        result = run_to_end(Runner(plan, vendor, 0, access, evidence))
    return write_outputs(work / "run", result)["bundle.zip"], work / "sandbox" / "keys" / "trace-signing.pub.pem"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=250)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import httpx

    from conformity.agency.registry import Registry
    from conformity.agency.service import ServiceConfig, accounts, create_app
    from conformity.agency.verify import verify_bundle
    from conformity.catalog import load_catalog
    from conformity.checks import registered_check_ids
    from conformity.checks.packs import load_pack_checks
    from conformity.db.connection import Database
    from conformity.signing import KeyRing

    load_pack_checks()
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "conformity", "agency", "serve", "--port", str(port), "--trust",
                             str(trust), "--workers", str(args.workers), "--insecure-cookies"], cwd=ROOT,
                            env={**os.environ, "USINE_SERVE_SERVER_TIMING": "1"}, stderr=subprocess.DEVNULL)
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
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        staff.post("/login", data={"login": "alice", "password": PASSWORD, "csrf": csrf})
        cookie = staff.cookies.get("usine_session")
        pages = ["/registry", "/registry?vendor=usine-reference&state=valid", "/api/v1/registry", "/revocations",
                 "/waves", "/api/v1/events?after=0", "/", f"/staff/submissions/{sub}", "/staff"]
        load_before = os.getloadavg()
        raw_lat, _ = asyncio.run(_load(base, ["/healthz"], args.users, args.requests // 2, cookie))
        lat, app_time = asyncio.run(_load(base, pages, args.users, args.requests, cookie))
        load_after = os.getloadavg()
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"\npages (load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; {os.cpu_count()} cores): "
          f"{args.requests} requests by {args.users} concurrent users over {len(pages)} pages "
          f"(public registry, filters, JSON, revocations, waves, events, home, a reviewer's submission page and "
          f"queue), usine agency serve --workers {args.workers}")
    all_lat = [x for v in lat.values() for x in v]
    print(f"  all pages: p50 {_pct(all_lat, 50) * 1000:.0f} ms, p95 {_pct(all_lat, 95) * 1000:.0f} ms, "
          f"p99 {_pct(all_lat, 99) * 1000:.0f} ms   (target p95 < 200 ms: "
          f"{'met' if _pct(all_lat, 95) < 0.2 else 'NOT met'})")
    for page, v in lat.items():
        a = app_time[page]
        print(f"    {page:<50} p50 {_pct(v, 50) * 1000:6.0f} ms  p95 {_pct(v, 95) * 1000:6.0f} ms  ({len(v)});  "
              f"app p50 {_pct(a, 50) * 1000:5.1f} ms  p95 {_pct(a, 95) * 1000:5.1f} ms")
    all_app = [x for v in app_time.values() for x in v]
    print(f"  the app's own time (Server-Timing) over all pages: p50 {_pct(all_app, 50) * 1000:.1f} ms, "
          f"p95 {_pct(all_app, 95) * 1000:.1f} ms; the rest of the latency is waiting for a worker and the CPU")
    raw_all = [x for v in raw_lat.values() for x in v]
    print(f"  raw baseline /healthz under the same load: p50 {_pct(raw_all, 50) * 1000:.0f} ms, "
          f"p95 {_pct(raw_all, 95) * 1000:.0f} ms (pages / raw at p95: {_pct(all_lat, 95) / _pct(raw_all, 95):.1f}×)")
    print(f"\n(work folder {work})")
    return 0


async def _load(base: str, pages: list[str], users: int, total: int,
                cookie: str | None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Latency per page (seconds) as the users see it, and the app's own time per page (Server-Timing)."""
    import httpx

    out: dict[str, list[float]] = {p: [] for p in pages}
    app: dict[str, list[float]] = {p: [] for p in pages}
    counter = iter(range(total))

    async def user(client: httpx.AsyncClient) -> None:
        for i in counter:
            page = pages[i % len(pages)]
            t = time.perf_counter()
            r = await client.get(page)
            out[page].append(time.perf_counter() - t)
            assert r.status_code == 200, (page, r.status_code)
            timing = re.search(r"app;dur=([0-9.]+)", r.headers.get("server-timing", ""))
            if timing:
                app[page].append(float(timing.group(1)) / 1000)

    limits = httpx.Limits(max_connections=users)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 cookies={"usine_session": cookie} if cookie else None) as client:
        await asyncio.gather(*(user(client) for _ in range(users)))
    return out, app


if __name__ == "__main__":
    raise SystemExit(main())
