"""Benchmark the payment run against a raw scan of the same events file, in the same process.

Generates a workload (``events_generate.py``; reused if already there), then measures:

1. raw scan: read every line and ``json.loads`` it, nothing else;
2. the payment run: verification of the events file's signed segments (event authentication), intake,
   validation, ledger (fresh SQLite file), settlement, orders and reports.

and prints events/s of each, their ratio, the cost of event authentication and its share of the run
(issue 9: under 5 % at 10 M events): the verification of the signed segments (timed inside the run)
plus the second hash of each proven span while intake reads it (``Reread``: measured here as the extra
time of reading the file through it, against reading it plainly, in the same process), and peak memory (``resource.getrusage`` maximum
resident set size after each phase; with ``--tracemalloc``, the Python heap peak of each phase too).

    .venv/bin/python benchmarks/payments_run.py                   # 10 million events
    .venv/bin/python benchmarks/payments_run.py --events 1000000  # scaled down

Generated data goes to a temporary folder (or ``--workdir``) and is never part of the repository.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from events_generate import Workload, fresh_revocations, generate  # noqa: E402

from conformity.catalog import load_catalog  # noqa: E402
from conformity.infrastructure_keys import load_keys  # noqa: E402
from conformity.labels import parse_time  # noqa: E402
from conformity.payments import RunOptions, run_payments  # noqa: E402
from conformity.payments.authenticate import FileProof, Reread  # noqa: E402
from conformity.payments.intake import read_lines  # noqa: E402
from conformity.payments.payees import load_payees, load_payer  # noqa: E402
from conformity.signing import KeyRing, SigningKey  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_scan(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            try:
                json.loads(line)
            except ValueError:
                pass
            n += 1
    return n


def reread_cost(path: Path, proof: FileProof) -> tuple[float, float]:
    """CPU seconds of intake's reading of the file, plainly and through ``Reread`` (best of two each).

    CPU time (user + system of this process) rather than wall time: the difference is small next to
    what other processes on the machine do to wall time.
    """
    plain, wrapped = [], []
    for _ in range(2):
        t = time.process_time()
        for _ in read_lines(path):
            pass
        plain.append(time.process_time() - t)
        t = time.process_time()
        for _ in read_lines(path, wrap=lambda fh: Reread(fh, proof)):
            pass
        wrapped.append(time.process_time() - t)
    return min(plain), min(wrapped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="event lines (default 10,000,000)")
    parser.add_argument("--installations", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the workload and ledger here")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak (slower)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="usine-bench-"))
    data = workdir / f"workload-{args.events}-{args.installations or 'auto'}-{args.seed}"
    t = time.perf_counter()
    manifest = data / "workload.json"
    saved = json.loads(manifest.read_text()) if manifest.is_file() else {}
    if set(saved) == set(Workload.__dataclass_fields__):
        w = Workload(**{k: (v if k == "wave" or k == "as_of" else Path(v)) for k, v in saved.items()})
        fresh_revocations(w.labels, SigningKey.load(data / "agency.pem"), w.as_of)
    else:
        print(f"generating {args.events:,} events in {data} …", file=sys.stderr)
        w = generate(data, args.events, args.installations, args.seed)
        manifest.write_text(json.dumps({f: str(getattr(w, f)) for f in w.__dataclass_fields__}))
    print(f"workload ready in {time.perf_counter() - t:.1f} s: {w.events} "
          f"({w.events.stat().st_size / 2**20:,.0f} MiB)", file=sys.stderr)

    rss0 = peak_rss_mib()
    if args.tracemalloc:
        tracemalloc.start()
    t = time.perf_counter()
    lines = raw_scan(w.events)
    scan_s = time.perf_counter() - t
    scan_heap = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    rss_scan = peak_rss_mib()
    if args.tracemalloc:
        tracemalloc.reset_peak()

    run_dir = workdir / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    options = RunOptions(wave=w.wave, labels=w.labels, events=(w.events,), ledger=run_dir / "ledger.sqlite3",
                         out=run_dir / "out", keys=KeyRing.from_paths([w.key]),
                         infrastructure=load_keys(w.infrastructure),
                         payer=load_payer(ROOT / "examples" / "payments" / "payer.toml"),
                         payees=load_payees(w.payees), as_of=parse_time(w.as_of))
    catalog = load_catalog()
    t = time.perf_counter()
    stats = run_payments(catalog, options)
    run_s = time.perf_counter() - t
    run_heap = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    rss_run = peak_rss_mib()
    ledger_mib = sum(f.stat().st_size for f in run_dir.glob("ledger.sqlite3*")) / 2**20

    print(f"events file: {lines:,} lines")
    print(f"raw scan (read + json.loads): {scan_s:8.1f} s  {lines / scan_s:12,.0f} events/s  "
          f"peak RSS {rss_scan:,.0f} MiB" + (f", heap peak {scan_heap:,.2f} MiB" if scan_heap is not None else ""))
    print(f"payment run:                  {run_s:8.1f} s  {lines / run_s:12,.0f} events/s  "
          f"peak RSS {rss_run:,.0f} MiB" + (f", heap peak {run_heap:,.2f} MiB" if run_heap is not None else ""))
    print(f"ratio: the payment run takes {run_s / scan_s:.1f}x the raw scan's time; peak RSS grew by "
          f"{max(0.0, rss_run - rss_scan):,.0f} MiB over the scan's (process start {rss0:,.0f} MiB)")
    verify_s = stats.auth_seconds
    reads = [reread_cost(p.events, p) for p in stats.proofs]
    plain_s, wrapped_s = sum(r[0] for r in reads), sum(r[1] for r in reads)
    rehash_s = max(0.0, wrapped_s - plain_s)
    auth_s = verify_s + rehash_s
    proofs = stats.proofs
    print(f"event authentication:         {auth_s:8.2f} s  = {100 * auth_s / run_s:.2f} % of the payment run "
          f"(bar: < 5 %)")
    print(f"  verification of the segments (in the run): {verify_s:.2f} s, {lines / verify_s:,.0f} lines/s; "
          f"{sum(p.proven_segments for p in proofs):,} of {sum(p.entries for p in proofs):,} segments proven, "
          f"{sum(p.proven_lines for p in proofs):,} lines proven, {stats.unproven:,} lines refused unproven")
    print(f"  second hash while intake reads (measured apart, CPU): {rehash_s:.2f} s = reading through Reread "
          f"{wrapped_s:.2f} s - reading plainly {plain_s:.2f} s")
    print(f"run: {stats.counted:,} counted, {stats.refused:,} refused, {stats.paid:,} installations paid "
          f"({stats.paid_cents / 100:,.2f}), {stats.cap_reached} over the cap, {stats.held} held; "
          f"ledger {ledger_mib:,.0f} MiB")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
