"""Compare the outputs of two checkouts' payment runs on the same generated events file (before/after a change).

Runs ``usine pay run`` of this tree and of ``--other`` (e.g. ``git archive main | tar -x -C /tmp/main``) on one
workload (``events_generate.py``; reused from ``--workdir``), each on a fresh ledger, then twice more on the same
ledger (a re-run pays nothing twice), and compares byte for byte: the refusal report (CSV and JSON), the payment
orders, proofs and totals (the ledger's random id and the creation times put aside), the summary (timings and
paths put aside), and every event the ledger recorded (source, id, digest, time, outcome). Prints the time of each.

    .venv/bin/python benchmarks/payments_compare.py --other /tmp/main --events 200000 --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from arguments import count  # noqa: E402
from payments_run import check_outcome, payment_run, workload  # noqa: E402

from conformity.payments.store import recorded_events  # noqa: E402

EXACT = ("refusals.csv", "refusals.json")
MASKED = ("payment-orders.csv", "payment-proofs.jsonl", "totals.csv")
_LEDGER_ID = re.compile(r"USINE-[0-9a-f]{16}-")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_VOLATILE = ("ledger", "outputs", "authentication", "revocation_list")


def _masked(text: str) -> str:
    return _CREATED.sub("<time>", _LEDGER_ID.sub("USINE-<ledger>-", text))


def _outputs(out: Path, ledger: Path) -> dict[str, object]:
    got: dict[str, object] = {name: (out / name).read_bytes() for name in EXACT}
    got.update({name: _masked((out / name).read_text(encoding="utf-8")) for name in MASKED})
    got["pain.001"] = sorted(_masked(p.read_text(encoding="utf-8")) for p in out.glob("pain001-*.xml"))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    got["summary.json"] = json.loads(_masked(json.dumps({k: v for k, v in summary.items() if k not in _VOLATILE})))
    got["recorded events"] = recorded_events(ledger)
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="the other checkout (the engine replaced)")
    parser.add_argument("--events", type=count(), default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=count(), default=2, help="runs on the same ledger (the second pays nothing)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="usine-compare-"))
    w = workload(workdir, args.events, args.seed)
    differences = 0
    results: dict[str, list[dict[str, object]]] = {}
    for name, tree in (("this tree", ROOT), ("other", args.other.resolve())):
        run_dir = workdir / f"compare-{name.replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
        shutil.rmtree(run_dir, ignore_errors=True)
        results[name] = []
        for k in range(args.runs):
            figures = payment_run(w, run_dir, tree, out=f"out-{k}")
            if k == 0:
                check_outcome(figures)
            print(f"{name:10} run {k + 1}: {figures['seconds']:7.1f} s, peak RSS {figures['rss_mib']:,.0f} MiB, "
                  f"{figures['counted']:,} counted, {figures['refused']:,} refused, {figures['paid']:,} paid")
            results[name].append(_outputs(run_dir / f"out-{k}", run_dir / "ledger.sqlite3"))
        shutil.rmtree(run_dir, ignore_errors=True)
    for k in range(args.runs):
        mine, other = results["this tree"][k], results["other"][k]
        for key in mine:
            same = mine[key] == other[key]
            differences += not same
            print(f"  run {k + 1} {key:22} {'identical' if same else 'DIFFERENT'}")
            here, there = mine[key], other[key]
            if not same and isinstance(here, dict) and isinstance(there, dict):
                for field in sorted(set(here) | set(there)):
                    if here.get(field) != there.get(field):
                        print(f"      {field}: {here.get(field)!r} here, {there.get(field)!r} there")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print("same outputs" if not differences else f"{differences} output(s) differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
