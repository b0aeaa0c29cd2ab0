"""Sandbox throughput: documents accepted per second, over HTTP and in-process, and with concurrent sessions.

A script, not a test. It starts a real sandbox (uvicorn in a thread of this process), then:

1. submits N documents one after the other through ``POST /s/{sid}/dmp/documents`` (httpx, keep-alive)
   and validates the same documents in-process (base64 decode, ``parse_xml``, ``sandbox.packs.health.cda.validate``),
   printing both rates and their ratio (the cost of HTTP, JSON, auth, storage and trace recording);
2. runs 1, 4, 16… sessions at once (asyncio + httpx.AsyncClient, one client per session), each
   submitting its own documents, and prints requests per second and latency percentiles.

Client and server share this process (and its GIL), so the figures include the client's own cost.

    python benchmarks/sandbox_throughput.py                      # default, well under a minute
    python benchmarks/sandbox_throughput.py --documents 2000 --sessions 1,8,32 --per-session 100
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conformity.xmlsafe import parse_xml  # noqa: E402
from sandbox.config import SandboxConfig  # noqa: E402
from sandbox.packs.health import cda, samples  # noqa: E402
from sandbox.server import RunningSandbox, start_in_thread  # noqa: E402

TYPES = ("34106-7", "11502-2", "60591-5", "18748-4", "60593-1")
ADMIN = "bench-admin"


def new_session(http: httpx.Client, server: RunningSandbox, seed: int) -> tuple[str, str, dict[str, Any]]:
    """A session id, an access token of its first practitioner (written in the store), its fixtures."""
    r = http.post("/admin/sessions", json={"seed": seed, "label": "benchmark"},
                  headers={"Authorization": f"Bearer {ADMIN}"})
    r.raise_for_status()
    session = r.json()
    store = cast(Any, server.server.config.app).state.store
    token = samples.issue_access_token(store, session["session_id"],
                                       session["fixtures"]["practitioners"][0]["national_id"], ttl=3600)
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


def over_http(server: RunningSandbox, sid: str, token: str, bodies: list[dict[str, Any]]) -> float:
    """Seconds to submit the bodies one after the other."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        started = time.perf_counter()
        for body in bodies:
            r = http.post(f"/s/{sid}/dmp/documents", json=body)
            if r.status_code != 201:
                raise SystemExit(f"benchmark: submission refused: {r.status_code} {r.text[:300]}")
        return time.perf_counter() - started


def in_process(bodies: list[dict[str, Any]], config: SandboxConfig) -> float:
    """Seconds to decode, parse and validate the same documents, as the service does, without HTTP."""
    schema = cda.load_schema(config.cda_xsd) if config.cda_xsd else None
    started = time.perf_counter()
    for body in bodies:
        document = base64.b64decode(body["document"], validate=True)
        root = parse_xml(document, max_bytes=config.max_xml_bytes, max_depth=config.max_xml_depth)
        findings, _ = cda.validate(root, body["metadata"], document, schema=schema)
        if findings:
            raise SystemExit(f"benchmark: sample refused in-process: {findings[0]}")
    return time.perf_counter() - started


Workload = tuple[str, str, list[dict[str, Any]]]


async def concurrent(server: RunningSandbox, workloads: list[Workload]) -> tuple[float, list[float]]:
    """Every session submits its documents at the same time; wall time and each request's latency."""
    latencies: list[float] = []

    async def worker(sid: str, token: str, bodies: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=120) as http:
            for body in bodies:
                t0 = time.perf_counter()
                r = await http.post(f"/s/{sid}/dmp/documents", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    raise SystemExit(f"benchmark: submission refused: {r.status_code} {r.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(*w) for w in workloads))
    return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1000, help="documents for the sequential comparison (1000)")
    parser.add_argument("--sessions", default="1,4,16", help="concurrent session counts, comma-separated (1,4,16)")
    parser.add_argument("--per-session", type=int, default=50, help="documents each concurrent session submits (50)")
    parser.add_argument("--level", choices=["1", "3", "mixed"], default="mixed", help="CDA level of the documents")
    parser.add_argument("--xsd", type=Path, help="start the sandbox with cda_xsd= this CDA.xsd (strict validation)")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.sessions.split(",") if c.strip()]

    with tempfile.TemporaryDirectory(prefix="usine-bench-") as tmp:
        config = SandboxConfig(data_dir=Path(tmp), admin_token=ADMIN, cda_xsd=args.xsd)
        with start_in_thread(config) as server, httpx.Client(base_url=server.base_url, timeout=60) as admin:
            print(f"sandbox {server.base_url}  level={args.level}  xsd={'on' if args.xsd else 'off'}")
            sid, token, fixtures = new_session(admin, server, seed=1)
            bodies = documents(fixtures, args.documents, args.level)
            mean_kib = statistics.mean(len(b["document"]) * 3 / 4 for b in bodies) / 1024
            print(f"\n1. {len(bodies)} documents (mean {mean_kib:.1f} KiB), one after the other")
            http_s = over_http(server, sid, token, bodies)
            raw_s = in_process(bodies, config)
            http_rate, raw_rate = len(bodies) / http_s, len(bodies) / raw_s
            print(f"   HTTP API        {http_rate:9.1f} documents/s   ({1000 * http_s / len(bodies):.2f} ms each)")
            print(f"   in-process      {raw_rate:9.1f} documents/s   ({1000 * raw_s / len(bodies):.2f} ms each: "
                  "parse_xml + sandbox.packs.health.cda)")
            print(f"   ratio           {raw_rate / http_rate:9.1f} x  (in-process / HTTP)")

            print(f"\n2. concurrent sessions, {args.per_session} documents each")
            print(f"   {'sessions':>8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            for i, k in enumerate(counts):
                workloads = []
                for j in range(k):
                    s, t, fx = new_session(admin, server, seed=1000 * (i + 1) + j)
                    workloads.append((s, t, documents(fx, args.per_session, args.level)))
                wall, lat = asyncio.run(concurrent(server, workloads))
                print(f"   {k:>8} {len(lat):>9} {len(lat) / wall:>9.1f} {1000 * percentile(lat, 50):>8.1f} "
                      f"{1000 * percentile(lat, 95):>8.1f} {1000 * max(lat):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
