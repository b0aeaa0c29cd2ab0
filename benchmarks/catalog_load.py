"""Benchmark: loading the catalog (every command's first step) — the schema checks on the fast path and without it.

Prints figures, not a test. A load reads every pack, referential and wave file, checks each against usine's
schema and each action's input and output schema against the JSON Schema meta-schema, then cross-checks the
catalog. The schema checks go to jsonschema-rs first and to jsonschema (the reference, with its messages) only
when jsonschema-rs refuses (``conformity.catalog.schema``). In one process each, started afresh (what a command
pays, imports apart):

* ``fast``: the load as usine does it;
* ``reference``: the same load with every check given to jsonschema alone (how loads were made before);
* the raw baseline: reading and parsing the same TOML files, nothing checked.

Then ``usine validate`` (start-up, imports and one load) as a user runs it.

    .venv/bin/python benchmarks/catalog_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from arguments import count  # this folder, first on a script's path

ROOT = Path(__file__).resolve().parents[1]


def measure(mode: str) -> dict[str, float]:
    """One fresh process's figures: the first load, a second one (compiled validators kept), the raw parse."""
    import conformity.catalog.crosscheck as crosscheck
    import conformity.catalog.schema as schema
    from conformity.catalog import load_catalog

    if mode == "reference":
        schema.fast_valid = lambda name, data: False
        schema._meta_valid_fast = lambda value: False  # type: ignore[assignment]
    files = sorted((ROOT / "referentials").glob("**/*.toml")) + sorted((ROOT / "waves").glob("*.toml"))
    t0 = time.perf_counter()
    for path in files:
        tomllib.loads(path.read_text(encoding="utf-8"))
    raw = time.perf_counter() - t0
    t1 = time.perf_counter()
    load_catalog()
    first = time.perf_counter() - t1
    crosscheck._schema_problem.cache_clear()
    t2 = time.perf_counter()
    load_catalog()
    again = time.perf_counter() - t2
    return {"raw": raw, "first": first, "again": again, "files": len(files)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=count(), default=5, help="fresh processes per mode (medians printed)")
    parser.add_argument("--mode", choices=("fast", "reference"), help=argparse.SUPPRESS)  # one child's measure
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(measure(args.mode)))
        return 0
    got: dict[str, list[dict[str, float]]] = {"fast": [], "reference": []}
    for _ in range(args.repeat):
        for mode in got:  # alternated: a machine that slows down slows both
            out = subprocess.run([sys.executable, __file__, "--mode", mode], capture_output=True, text=True,
                                 check=True, cwd=ROOT)
            got[mode].append(json.loads(out.stdout))

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in got[mode])

    raw = statistics.median(r["raw"] for rows in got.values() for r in rows)
    print(f"catalog: {int(got['fast'][0]['files'])} TOML files; medians of {args.repeat} fresh processes per mode")
    print(f"raw baseline (read + tomllib, nothing checked): {raw * 1000:.0f} ms")
    for mode in got:
        print(f"{mode:>9}: first load {med(mode, 'first') * 1000:.0f} ms ({med(mode, 'first') / raw:.1f}x raw), "
              f"again in the same process {med(mode, 'again') * 1000:.0f} ms ({med(mode, 'again') / raw:.1f}x raw)")
    print(f"fast / reference: first load {med('fast', 'first') / med('reference', 'first'):.2f}, "
          f"again {med('fast', 'again') / med('reference', 'again'):.2f}")
    usine = Path(sys.executable).with_name("usine")
    walls = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run([str(usine), "validate"], capture_output=True, check=True, cwd=ROOT)
        walls.append(time.perf_counter() - t)
    bare = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t)
    print(f"`usine validate` (start-up, imports, one load): {statistics.median(walls) * 1000:.0f} ms wall; "
          f"a bare interpreter {statistics.median(bare) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
