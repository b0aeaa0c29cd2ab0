"""Benchmark: a full wave run of the reference vendor (wall time, per-scenario and per-check time).

Prints figures, not a test. Two baselines from the same run: the sum of the scenarios' own times (what the
run would last driving them one after another: the wall time against it is the gain of running them at once),
and the pure evaluation, re-deriving every verdict from the recorded traces in this process (what the agency
does: how much of a run is driving the software versus judging it). The CPU time of this process (harness and
sandbox) and of the driver processes is printed too: on a loaded machine the wall time is the CPU left to the run.

    .venv/bin/python benchmarks/harness_run.py [--wave 2027-W2] [--category HOSPITAL] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from arguments import count  # this folder, first on a script's path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wave", default="2027-W2")
    parser.add_argument("--category", default="HOSPITAL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sandbox-seed", action="store_true",
                        help="let the sandbox draw the run's seed (a run for a label: each scenario's inputs are drawn "
                             "once its session has opened)")
    parser.add_argument("--parallel", type=count(0), default=None,
                        help="scenarios driven at once (default: the runner's, 6; 0: every scenario at once)")
    parser.add_argument("--vendor", type=Path, default=ROOT / "examples" / "vendors" / "health" / "reference" / "vendor.toml")
    parser.add_argument("--early", type=count(0), default=None,
                        help="driver processes started before the sandbox (default: the runner's EARLY_DRIVERS)")
    parser.add_argument("--no-reuse", action="store_true",
                        help="a driver process per scenario even if the vendor declares reuse (the baseline of reuse)")
    args = parser.parse_args(argv)

    from conformity.catalog import load_catalog
    from conformity.checks.evaluate import evaluate_checks
    from conformity.checks.registry import registered_check_ids
    from conformity.errors import InputError
    from conformity.harness.outputs import run_to_end
    from conformity.harness.plan import make_plan
    from conformity.harness.runner import EARLY_DRIVERS, Runner, driver_pool, eval_context
    from conformity.harness.sandbox_access import start_local
    from conformity.harness.vendor import load_vendor
    from conformity.paths import keep_hypothesis_cache_aside
    from conformity.plugins import register_all

    keep_hypothesis_cache_aside()  # as `usine run` does: no .hypothesis/ left in the folder it runs in
    load_at_start = os.getloadavg()[0]
    register_all()
    catalog = load_catalog(registered_checks=registered_check_ids())
    try:
        vendor = load_vendor(args.vendor)
        plan = make_plan(catalog, args.wave, args.category)
    except InputError as exc:  # the vendor's manifest, the wave or the category (what, where, why)
        parser.error(str(exc))
    if args.no_reuse:
        vendor = dataclasses.replace(vendor, driver=dataclasses.replace(vendor.driver, reuse=False))
    scenario_times: dict[str, float] = {}
    from conformity.harness.events import ScenarioFinished

    def on_event(event: object) -> None:
        if isinstance(event, ScenarioFinished):
            scenario_times[event.scenario] = event.duration_s

    t0 = time.perf_counter()
    drivers = driver_pool(plan, vendor, EARLY_DRIVERS if args.early is None else args.early)
    with start_local() as access:
        started = time.perf_counter()
        runner = Runner(plan, vendor, None if args.sandbox_seed else args.seed, access, driver_pool=drivers)
        if args.parallel is not None:
            runner.parallel = args.parallel
        result = run_to_end(runner, on_event)
        ran = time.perf_counter()
    closed = time.perf_counter()
    start_s, run_s, shutdown_s, total_s = started - t0, ran - started, closed - ran, closed - t0

    ctx = eval_context(plan, vendor.identity())
    e0 = time.perf_counter()
    evaluate_checks(plan.checks, result.traces, ctx)
    eval_s = time.perf_counter() - e0

    report = result.report
    checks_ms = sorted(((c["duration_ms"], c["id"]) for c in report["checks"]), reverse=True)
    exchanges = sum(len(t.get("exchanges", ())) for t in result.traces.values())
    s = report["summary"]
    seed = "drawn by the sandbox (revealed at the end)" if args.sandbox_seed else args.seed
    print(f"wave {args.wave} {args.category}, vendor {vendor.software} {vendor.version}, seed {seed}")
    print(f"requirements {s['requirements']}, checks {len(plan.checks)}, scenarios {len(plan.scenarios)}, "
          f"recorded exchanges {exchanges}; MUST passed {s['must_passed']}/{s['must_automated']}")
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    sequential = sum(scenario_times.values())
    print(f"wall time: {total_s:.2f} s = sandbox start {start_s:.2f} s + run {run_s:.2f} s (driver shutdown included) "
          f"+ sandbox shutdown {shutdown_s:.2f} s ({'under' if total_s < 5 else 'OVER'} the 5 s bar); load average "
          f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs")
    print(f"before it (not in the bar): imports, catalog, plan {t0 - began:.2f} s (usine run does the same)")
    print(f"baseline (sum of scenario times, one after the other): {sequential:.2f} s; "
          f"run / sum {run_s / max(sequential, 1e-9):.2f}")
    drivers_cpu = children.ru_utime + children.ru_stime
    print(f"CPU: this process (harness + sandbox) {own.ru_utime + own.ru_stime:.2f} s, "
          f"driver processes {drivers_cpu:.2f} s")
    if vendor.driver.command:
        start_up, bare = driver_start_up(vendor.driver), driver_start_up(vendor.driver, bare=True)
        pool = runner.drivers
        print(f"driver processes: {pool.started} started for {len(plan.scenarios)} scenarios ({pool.reused} served by a "
              f"process reset after an earlier one; reuse {'declared' if vendor.driver.reuse else 'not declared'})")
        print(f"driver start-up (started, asked to shut down, no action; best of 3, measured now): {start_up * 1000:.0f} ms "
              f"CPU, a bare interpreter {bare * 1000:.0f} ms; x {pool.started} processes = "
              f"{start_up * pool.started:.2f} s of the drivers' {drivers_cpu:.2f} s (one per scenario: "
              f"{start_up * len(plan.scenarios):.2f} s)")
    print("scenarios (s): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(scenario_times.items(), key=lambda x: -x[1])))
    print(f"per scenario: mean {statistics.mean(scenario_times.values()):.2f} s, max {max(scenario_times.values()):.2f} s")
    print(f"per check evaluation: mean {statistics.mean(m for m, _ in checks_ms):.2f} ms, "
          f"slowest {', '.join(f'{c} {m:.1f} ms' for m, c in checks_ms[:3])}")
    print(f"baseline (re-deriving every verdict from the traces, in process): {eval_s * 1000:.1f} ms")
    print(f"ratio run / re-derivation: {run_s / max(eval_s, 1e-9):.0f}x")
    return 0 if s["passed"] else 1


def driver_start_up(spec: Any, *, bare: bool = False, runs: int = 3) -> float:
    """CPU seconds (best of ``runs``) of the vendor's driver process from its start to its exit when asked to shut
    down at once: what every scenario pays before its first action (``bare``: the same interpreter doing nothing)."""
    command = [sys.executable, "-c", "pass"] if bare else list(spec.command)
    shutdown = b'{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}\n'
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, cwd=spec.cwd, env={**os.environ, **spec.env}, input=shutdown,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return best


if __name__ == "__main__":
    sys.exit(main())
