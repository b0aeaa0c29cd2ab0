"""Benchmark the payment run against bare scans of the same events file, side by side, in one run.

For each size (``--events 1000000,10000000``) it generates a workload (``events_generate.py``; reused if
already there) and measures, one after the other on the same file:

1. ``json.loads`` scan: read every line and parse it, nothing else (the historical baseline);
2. ``orjson`` scan: the same with orjson;
3. DuckDB typed scan: ``read_json`` of the lines with every field typed, grouped by installation;
4. the payment run on DuckDB (a child process, for its own peak RSS): verification of the signed
   segments (event authentication: the sidecar first, then each segment hashed as it is loaded), intake,
   validation, de-duplication, judgement, the columnar event store, the ledger (a fresh SQLite
   file), settlement, orders and reports;
5. with ``--engine spark``, the same payment run on Spark (``--spark-master``, default ``local[*]``), its
   outcome checked equal to the DuckDB run's;
6. with ``--parquet``, the same events as a sealed Parquet events file (``conformity.payments.parquet``): the
   DuckDB scan of it (read_parquet, grouped by installation) and the payment run on it, with its own bar.

It prints events/s of each, the bars of issue 14 (run ≥ 50 % of the DuckDB scan, never slower than
the orjson scan, peak RSS under 1 GiB at 10 M events), the cost per event at each size and their
ratio (flat: close to 1), and the share of event authentication in the run. By default each size has
one installation for 200 events (10 M events: 10x the installations of 1 M); ``--installations M`` keeps one
installed base at every size, as a national run's is: the events grow, the installations do not.

    .venv/bin/python benchmarks/payments_run.py                              # 1 M and 10 M events
    .venv/bin/python benchmarks/payments_run.py --installations 50000 --no-scans   # both over 50,000 sites
    .venv/bin/python benchmarks/payments_run.py --events 1000000             # one size
    .venv/bin/python benchmarks/payments_run.py --events 1000000 --engine spark   # and the run on Spark

Generated data goes to a temporary folder (or ``--workdir``) and is never part of the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from arguments import count, counts, positive  # noqa: E402
from events_generate import (  # noqa: E402
    Workload,
    default_installations,
    fresh_revocations,
    generate,
    generator_fingerprint,
)

from conformity.payments.engine import memory_bytes  # noqa: E402
from conformity.signing import SigningKey  # noqa: E402

TYPED = ("{specversion: 'VARCHAR', type: 'VARCHAR', source: 'VARCHAR', id: 'VARCHAR', time: 'TIMESTAMP', "
         "subject: 'VARCHAR', datacontenttype: 'VARCHAR', dataschema: 'VARCHAR', data: 'STRUCT(installation_id "
         "VARCHAR, vendor_id VARCHAR, software STRUCT(id VARCHAR, name VARCHAR, version VARCHAR, registration_id "
         "VARCHAR), site STRUCT(id VARCHAR, size VARCHAR, name VARCHAR), wave VARCHAR, category VARCHAR, kind VARCHAR, "
         "document_type VARCHAR, bytes BIGINT, sha256 VARCHAR, reference VARCHAR)'}")


def lines_parsed(path: Path, loads: Callable[[bytes], object], error: type[Exception]) -> int:
    """How many lines ``path`` has, each parsed by ``loads`` (a line it refuses with ``error`` counts too)."""
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            try:
                loads(line)
            except error:
                pass
            n += 1
    return n


def json_scan(path: Path) -> int:
    return lines_parsed(path, json.loads, ValueError)


def orjson_scan(path: Path) -> int:
    import orjson

    return lines_parsed(path, orjson.loads, orjson.JSONDecodeError)


def duckdb_scan(path: Path) -> int:
    import duckdb

    con = duckdb.connect()
    rows = con.execute(f"SELECT data.installation_id, count(*) FROM read_json('{path}', format='newline_delimited', "
                       f"columns={TYPED}, ignore_errors=true) GROUP BY 1").fetchall()
    con.close()
    return sum(r[1] for r in rows)


def duckdb_parquet_scan(path: Path) -> int:
    import duckdb

    con = duckdb.connect()
    rows = con.execute(f"SELECT data.installation_id, count(*) FROM read_parquet('{path}') GROUP BY 1").fetchall()
    con.close()
    return sum(r[1] for r in rows)


def parquet_workload(w: Workload, seed: int) -> Workload:
    """The workload's events as a sealed Parquet events file beside them (made again when older than the JSON lines):
    every line's attributes, the forged tail included (sealed with the rest: one segment over the whole file)."""
    from conformity.payments import parquet

    target = w.events.with_suffix(".parquet")
    if not target.is_file() or target.stat().st_mtime < w.events.stat().st_mtime:
        print(f"writing {target} …", file=sys.stderr)
        parquet.from_jsonl(w.events, target)
        parquet.seal(target, SigningKey.from_seed(f"usine benchmark infrastructure {seed}".encode()))
    return dataclasses.replace(w, events=target)


WAVE = "2026-W1"
STAGE_BLOCK = 64 << 20


def fast_path_stages(path: Path) -> dict[str, float]:
    """CPU seconds of each step of the run's fast path (the engine's own SQL), each run alone over the file's
    lines in blocks of ``STAGE_BLOCK`` bytes: what bounds the run from below, next to the typed scan."""
    import hashlib

    import duckdb
    import numpy as np
    import pyarrow as pa

    from conformity.payments import engine as e

    cpu = dict.fromkeys(("read + split into Arrow lines", "sha256 of the file (hashlib)", "json_valid + json_transform",
                         "exactness (to_json = line)", "envelope + data rules", "digest: sha256 of canonical, DuckDB",
                         "(sha256 of the raw line, DuckDB)", "(sha256 per line, Python hashlib)"), 0.0)
    con = duckdb.connect(config={"memory_limit": e.MEMORY_LIMIT, "preserve_insertion_order": False})

    def step(name: str, fn: Callable[[], Any]) -> Any:
        c = time.process_time()
        out = fn()
        cpu[name] += time.process_time() - c
        return out

    def split(data: bytes) -> Any:
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10).astype(np.int64) + 1
        offsets = np.concatenate([np.zeros(1, np.int64), ends])
        raw = pa.Array.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return pa.table({"line": np.arange(len(ends)), "span": np.zeros(len(ends), np.int64),
                         "raw": raw.cast(pa.large_string(), safe=False)})

    def per_line(lines: list[str]) -> list[bytes]:
        return [hashlib.sha256(x.encode()).digest()[:16] for x in lines]

    carry = b""
    with open(path, "rb") as fh:
        while True:
            c = time.process_time()
            chunk = fh.read(STAGE_BLOCK)
            data = carry + chunk
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            data, carry = data[:cut], data[cut:]
            cpu["read + split into Arrow lines"] += time.process_time() - c
            if not data:
                break
            step("sha256 of the file (hashlib)", partial(hashlib.sha256, data))
            table = step("read + split into Arrow lines", partial(split, data))
            con.register("batch_lines", table)
            step("json_valid + json_transform", lambda: con.execute(f"CREATE OR REPLACE TEMP TABLE px AS {e.PARSED}"))
            step("exactness (to_json = line)", lambda: con.execute(
                f"SELECT count(*) FROM px WHERE j IS NOT NULL AND {e._PRODUCED}").fetchall())
            step("envelope + data rules", lambda: con.execute(
                f"SELECT count(*) FROM px WHERE j IS NOT NULL AND {e._RULES} AND {e._TIME_US} IS NOT NULL").fetchall())
            step("digest: sha256 of canonical, DuckDB", lambda: con.execute(
                f"SELECT max(unhex(left(sha256({e._CANONICAL}), 32))) FROM px WHERE j IS NOT NULL").fetchall())
            step("(sha256 of the raw line, DuckDB)", lambda: con.execute(
                "SELECT max(unhex(left(sha256(raw), 32))) FROM px").fetchall())
            lines = table.column("raw").to_pylist()
            step("(sha256 per line, Python hashlib)", partial(per_line, lines))
            con.unregister("batch_lines")
            con.execute("DROP TABLE px")
    con.close()
    return cpu


T = TypeVar("T")


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    """(wall seconds, result); the CPU seconds of the call (every thread of this process) in ``CPU[fn]``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    CPU[fn.__name__] = time.process_time() - c
    return time.perf_counter() - t, out


#: CPU seconds of the last timed call of each scan: on a shared machine, CPU time says what wall time cannot
CPU: dict[str, float] = {}


RUN_CHILD = """
import json, sys, time, resource
sys.path[:0] = [{root!r}]
from pathlib import Path
from conformity.catalog import load_catalog
from conformity.infrastructure_keys import load_keys
from conformity.labels import parse_time
from conformity.payments import RunOptions, run_payments
from conformity.payments.payees import load_payees, load_payer
from conformity.signing import KeyRing
w = json.loads({workload!r})
run = Path({run!r})
o = RunOptions(wave=w["wave"], labels=Path(w["labels"]), events=(Path(w["events"]),), ledger=run / "ledger.sqlite3",
               out=run / {out!r}, keys=KeyRing.from_paths([Path(w["key"])]),
               infrastructure=load_keys(Path(w["infrastructure"])),
               payer=load_payer(Path({payer!r})), payees=load_payees(Path(w["payees"])), as_of=parse_time(w["as_of"]),
               **{engine!r})
catalog = load_catalog()
t = time.perf_counter()
s = run_payments(catalog, o)
print(json.dumps({{"seconds": time.perf_counter() - t, "lines": s.lines, "counted": s.counted, "refused": s.refused,
                  "paid": s.paid, "paid_cents": s.paid_cents, "unproven": s.unproven, "auth": s.auth_seconds,
                  "cpu": time.process_time(),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def payment_run(w: Workload, run: Path, root: Path = ROOT, engine: dict[str, str | int] | None = None,
                env: dict[str, str] | None = None, out: str = "out") -> dict[str, float]:
    """The payment run of the tree ``root`` (this one by default) on the workload, in a child process, with the
    ledger ``run/ledger.sqlite3`` and its outputs in ``run/<out>``; ``engine``: RunOptions' engine,
    spark_master and memory_limit (default: the tree's defaults); ``env``: more environment."""
    workload = json.dumps({f: str(getattr(w, f)) for f in w.__dataclass_fields__})
    code = RUN_CHILD.format(root=str(root), workload=workload, run=str(run), out=out,
                            payer=str(ROOT / "examples" / "payments" / "payer.toml"), engine=engine or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"the payment run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def workload(workdir: Path, events: int, seed: int, installations: int | None = None) -> Workload:
    """The workload of ``events`` events over ``installations`` (default: the generator's, one for 200 events) for
    ``seed`` under ``workdir``, generated again unless the folder holds one made by the same generator code, wave
    definition and arguments (its manifest records that fingerprint)."""
    if installations == default_installations(events):
        installations = None  # the same workload as the default's: its folder
    data = workdir / f"workload-{events}-{installations or 'auto'}-{seed}"
    manifest = data / "workload.json"
    fingerprint = generator_fingerprint(events, installations, seed, WAVE)
    saved = json.loads(manifest.read_text()) if manifest.is_file() else {}
    files = saved.get("files", {})
    if saved.get("generator") == fingerprint and set(files) == set(Workload.__dataclass_fields__):
        fields: dict[str, Any] = {k: (v if k in ("wave", "as_of") else Path(v)) for k, v in files.items()}
        w = Workload(**fields)
        if w.events.is_file() and w.events.stat().st_size == saved.get("events_bytes"):
            fresh_revocations(w.labels, SigningKey.load(data / "agency.pem"), w.as_of)
            return w
    why = "made by other code or arguments" if saved else "none yet"
    print(f"generating {events:,} events in {data} ({why}) …", file=sys.stderr)
    manifest.unlink(missing_ok=True)
    w = generate(data, events, installations, seed, WAVE)
    manifest.write_text(json.dumps({"generator": fingerprint, "events_bytes": w.events.stat().st_size,
                                    "files": {f: str(getattr(w, f)) for f in w.__dataclass_fields__}}))
    return w


def check_outcome(run: dict[str, float]) -> None:
    """Stop (SystemExit) when the run's outcome says the figures measure nothing: it paid nothing, or refused or
    left unproven most of the lines (the generated workload counts about 83 % of its lines and refuses 17 %)."""
    lines = run["lines"]
    problems = []
    if run["paid"] <= 0 or run["paid_cents"] <= 0:
        problems.append(f"it paid nothing ({run['paid']} installations)")
    if run["counted"] < lines / 2:
        problems.append(f"it counted {run['counted']:,} of {lines:,} lines")
    if run["refused"] > lines / 2:
        problems.append(f"it refused {run['refused']:,} of {lines:,} lines")
    if run["unproven"] > lines / 2:
        problems.append(f"{run['unproven']:,} of {lines:,} lines were unproven")
    if problems:
        raise SystemExit("the payment run did not do the work it is measured on: " + "; ".join(problems)
                         + " — no figure printed (is the workload stale, or the run broken?)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=counts(), default=[1_000_000, 10_000_000],
                        help="sizes, comma-separated (default 1M and 10M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--installations", type=count(), default=None,
                        help="the same installed base at every size (default: one installation for 200 events, so "
                             "10 M events have 10x the installations of 1 M: the cost per event then also grows "
                             "with the installations a batch touches); a national run's base is what it is")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the workloads here (reused next time)")
    parser.add_argument("--max-load", type=positive, default=3.0,
                        help="measure sizes of 10 M events and more only while the 1-minute load average is below this "
                             "(the machine is shared: a figure under a higher load says little); default 3")
    parser.add_argument("--compare-tree", type=Path, default=None,
                        help="also run the payment run of another checkout on the same file (e.g. `git archive main` "
                             "extracted in a folder: the engine this branch replaces), printed beside this one")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="spark: also run the payment run on Spark (--spark-master) on the same file, printed beside "
                             "the DuckDB run with the same outcome checked")
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--parquet", action="store_true",
                        help="also the same events as a sealed Parquet events file: the DuckDB scan of it and the payment "
                             "run on it (with --engine spark, on Spark too), printed with their own bar")
    parser.add_argument("--memory-limit", default=None, metavar="SIZE",
                        help="the runs' DuckDB memory (usine pay run --memory-limit; default: its default, 256MB)")
    parser.add_argument("--no-scans", action="store_true",
                        help="the payment runs only (cost per event, peak RSS): not the three scans, so not the bars "
                             "against them (a 10 M scan reads 6.6 GiB three times)")
    parser.add_argument("--stages", action="store_true",
                        help="also time each step of the run's fast path alone on the same file (CPU), against the scan")
    parser.add_argument("--spark-driver-memory", default="3g", help="the JVM heap of Spark's driver (local: also the "
                        "executors'), passed as PYSPARK_SUBMIT_ARGS")
    args = parser.parse_args(argv)
    if args.no_scans and (args.compare_tree or args.engine != "duckdb" or args.stages or args.parquet):
        parser.error("--no-scans prints the DuckDB payment run only: not with --compare-tree, --engine spark, --stages, "
                     "--parquet")
    try:
        memory: dict[str, str | int] = {"memory_limit": memory_bytes(args.memory_limit)} if args.memory_limit else {}
    except ValueError as exc:
        parser.error(f"--memory-limit: {exc}")
    sizes: list[int] = args.events
    if not sizes:
        parser.error("--events: no size given")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="usine-bench-"))
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start"
          + (f"; DuckDB memory limit {args.memory_limit}" if memory else ""))
    results = []
    skipped = []
    for n in sizes:
        if n >= 10_000_000 and os.getloadavg()[0] >= args.max_load:
            skipped.append((n, os.getloadavg()[0]))
            print(f"\n{n:,} events: not measured, the load average is {os.getloadavg()[0]:.1f} "
                  f"(>= {args.max_load:.0f}; --max-load to change)")
            continue
        w = workload(workdir, n, args.seed, args.installations)
        mib = w.events.stat().st_size / 2**20
        scans = not args.no_scans
        json_s, lines = timed(json_scan, w.events) if scans else (float("nan"), 0)
        orjson_s, _ = timed(orjson_scan, w.events) if scans else (float("nan"), 0)
        duck_s, _ = timed(duckdb_scan, w.events) if scans else (float("nan"), 0)
        run_dir = workdir / f"run-{n}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = payment_run(w, run_dir, engine=memory)
        shutil.rmtree(run_dir, ignore_errors=True)
        check_outcome(run)
        lines = lines or int(run["lines"])
        other = None
        if args.compare_tree is not None:
            other = payment_run(w, run_dir, args.compare_tree.resolve())
            check_outcome(other)
            shutil.rmtree(run_dir, ignore_errors=True)
        spark = None
        if args.engine == "spark":
            spark = payment_run(w, run_dir, engine={**memory, "engine": "spark", "spark_master": args.spark_master},
                                env={"PYSPARK_SUBMIT_ARGS": f"--driver-memory {args.spark_driver_memory} pyspark-shell"})
            shutil.rmtree(run_dir, ignore_errors=True)
            check_outcome(spark)
        pq_figures = None
        if args.parquet:
            wp = parquet_workload(w, args.seed)
            pq_scan_s, _ = timed(duckdb_parquet_scan, wp.events)
            pq_run = payment_run(wp, run_dir, engine=memory)
            shutil.rmtree(run_dir, ignore_errors=True)
            check_outcome(pq_run)
            pq_spark = None
            if args.engine == "spark":
                pq_spark = payment_run(wp, run_dir, engine={**memory, "engine": "spark", "spark_master": args.spark_master},
                                       env={"PYSPARK_SUBMIT_ARGS": f"--driver-memory {args.spark_driver_memory} pyspark-shell"})
                shutil.rmtree(run_dir, ignore_errors=True)
            pq_figures = (wp.events.stat().st_size / 2**20, pq_scan_s, CPU["duckdb_parquet_scan"], pq_run, pq_spark)
        results.append((n, lines, mib, json_s, orjson_s, duck_s, run))
        rate = lambda s, lines=lines: lines / s  # noqa: E731
        print(f"\n{lines:,} lines ({mib:,.0f} MiB)")
        if not scans:
            print(f"  payment run (DuckDB)      {run['seconds']:8.1f} s {rate(run['seconds']):12,.0f} events/s  "
                  f"CPU {run['cpu']:7.1f} s  peak RSS {run['rss_mib']:,.0f} MiB  (scans not run: --no-scans)")
            continue
        print(f"  read + json.loads         {json_s:8.1f} s {rate(json_s):12,.0f} events/s  CPU {CPU['json_scan']:7.1f} s")
        print(f"  read + orjson.loads       {orjson_s:8.1f} s {rate(orjson_s):12,.0f} events/s  CPU {CPU['orjson_scan']:7.1f} s")
        print(f"  DuckDB typed scan+group   {duck_s:8.1f} s {rate(duck_s):12,.0f} events/s  CPU {CPU['duckdb_scan']:7.1f} s")
        print(f"  payment run (DuckDB)      {run['seconds']:8.1f} s {rate(run['seconds']):12,.0f} events/s  "
              f"CPU {run['cpu']:7.1f} s  peak RSS {run['rss_mib']:,.0f} MiB")
        if other is not None:
            print(f"  payment run ({args.compare_tree.name})  {other['seconds']:8.1f} s "
                  f"{rate(other['seconds']):12,.0f} events/s  CPU {other['cpu']:7.1f} s  peak RSS "
                  f"{other['rss_mib']:,.0f} MiB  (this run is {other['seconds'] / run['seconds']:.2f}x as fast, "
                  f"{other['cpu'] / run['cpu']:.2f}x in CPU time; same outcome: "
                  f"{all(other[k] == run[k] for k in ('counted', 'refused', 'paid', 'paid_cents'))})")
        if spark is not None:
            print(f"  payment run (Spark {args.spark_master}, driver heap {args.spark_driver_memory}) "
                  f"{spark['seconds']:8.1f} s {rate(spark['seconds']):12,.0f} "
                  f"events/s  Python driver peak RSS {spark['rss_mib']:,.0f} MiB, JVM apart (Spark / DuckDB run time "
                  f"{spark['seconds'] / run['seconds']:.2f}; same outcome: "
                  f"{all(spark[k] == run[k] for k in ('lines', 'counted', 'refused', 'unproven', 'paid', 'paid_cents'))})")
        print(f"  bars: run / DuckDB scan = {duck_s / run['seconds']:.2f} (>= 0.50); run / orjson scan = "
              f"{orjson_s / run['seconds']:.2f} (>= 1.00); run / json.loads scan = {json_s / run['seconds']:.2f}")
        print(f"  the same in CPU time:     run / DuckDB scan = {CPU['duckdb_scan'] / run['cpu']:.2f}; run / orjson "
              f"scan = {CPU['orjson_scan'] / run['cpu']:.2f}; run / json.loads scan = {CPU['json_scan'] / run['cpu']:.2f}")
        print(f"  event authentication (signatures and chain of the segments, in the run): {run['auth']:.1f} s = "
              f"{100 * run['auth'] / run['seconds']:.1f} % of the run; the hash of the segments is inside the loading")
        if pq_figures is not None:
            pq_mib, pq_scan_s, pq_scan_cpu, pq_run, pq_spark = pq_figures
            pq_lines = int(pq_run["lines"])
            print(f"  the same events as Parquet ({pq_lines:,} rows, {pq_mib:,.0f} MiB, one segment over the file):")
            print(f"    DuckDB Parquet scan+group {pq_scan_s:8.1f} s {pq_lines / pq_scan_s:12,.0f} events/s  CPU {pq_scan_cpu:7.1f} s")
            print(f"    payment run (DuckDB)      {pq_run['seconds']:8.1f} s {pq_lines / pq_run['seconds']:12,.0f} events/s  "
                  f"CPU {pq_run['cpu']:7.1f} s  peak RSS {pq_run['rss_mib']:,.0f} MiB; {pq_run['counted']:,} counted, "
                  f"{pq_run['refused']:,} refused, {pq_run['unproven']:,} unproven, {pq_run['paid']:,} paid")
            print(f"    bars: run / Parquet scan = {pq_scan_s / pq_run['seconds']:.2f} (>= 0.50); run / orjson scan of the "
                  f"lines = {orjson_s / pq_run['seconds']:.2f} (>= 1.00); Parquet run / JSON-lines run = "
                  f"{run['seconds'] / pq_run['seconds']:.2f}x as fast ({run['cpu'] / pq_run['cpu']:.2f}x in CPU)")
            if pq_spark is not None:
                print(f"    payment run (Spark {args.spark_master}) {pq_spark['seconds']:8.1f} s; same outcome as DuckDB's: "
                      f"{all(pq_spark[k] == pq_run[k] for k in ('lines', 'counted', 'refused', 'unproven', 'paid', 'paid_cents'))}")
        if args.stages:
            stages = fast_path_stages(w.events)
            scan_cpu = CPU["duckdb_scan"]
            print(f"  fast-path steps alone (CPU; the bar in CPU: the whole run <= {2 * scan_cpu:.2f} s = 2x the scan):")
            for name, sec in stages.items():
                print(f"    {name:38} {sec:7.2f} s  {sec / scan_cpu:5.2f}x the typed scan, "
                      f"{100 * sec / run['cpu']:5.1f} % of the run")
            floor = sum(v for k, v in stages.items() if not k.startswith("("))
            print(f"    {'sum of the steps the run needs':38} {floor:7.2f} s  {floor / scan_cpu:5.2f}x the typed scan")
        print(f"  run: {run['counted']:,} counted, {run['refused']:,} refused, {run['unproven']:,} unproven, "
              f"{run['paid']:,} installations paid ({run['paid_cents'] / 100:,.2f})")
    if results:
        print("\ncost per event of the payment run:")
        base = None
        for n, lines, _, _, _, _, run in results:
            us = run["seconds"] / lines * 1e6
            base = base or us
            rss = run["rss_mib"]
            m = args.installations or default_installations(n)
            print(f"  {n:>12,} events over {m:,} installations: {us:6.2f} µs/event ({us / base:.2f}x the first size), "
                  f"{run['cpu'] / lines * 1e6:6.2f} µs of CPU/event, peak RSS {rss:,.0f} MiB"
                  + (" (bar: < 1024 MiB)" if n >= 10_000_000 else ""))
        for n, load1 in skipped:
            print(f"  {n:>12,} events: not measured (load average {load1:.1f} at its turn)")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end; this process's peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
