"""Benchmark: judging an evidence file by its content (``conformity.bundle.evidence.sniff``) as its size grows.

Prints figures, not a test. A run takes up to 64 files of up to 16 MiB each, judged before the run starts (and
the pytest plugin judges them at collection and again at the run): text, JSON and, as a baseline, the UTF-8 decode
every text or JSON file goes through. Time per size should grow linearly, text close to the decode (the control
character search was a Python loop over every character, 0.13 s per MiB; one regular expression now).

    .venv/bin/python benchmarks/evidence_sniff.py [--mib 1,4,16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from arguments import count, counts  # this folder, first on a script's path

from conformity.bundle.evidence import sniff


def best(repeat: int, work: Callable[[], object]) -> float:
    """The best of ``repeat`` timings of ``work`` (seconds)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=counts(), default=[1, 4, 16], help="file sizes in MiB (comma-separated)")
    parser.add_argument("--repeat", type=count(), default=3, help="timings per figure (the best is printed)")
    args = parser.parse_args()
    print(f"{'MiB':>4} {'decode s':>9} {'text s':>8} {'json s':>8}")
    for mib in args.mib:
        size = mib * 1024 * 1024
        text = ("Compte rendu, page 1 — é à ü 漢字\n" * (size // 40)).encode()
        doc = b"[" + b"1," * (size // 2 - 1) + b"1]"
        print(f"{mib:>4} {best(args.repeat, text.decode):>9.3f} {best(args.repeat, partial(sniff, text)):>8.3f} "
              f"{best(args.repeat, partial(sniff, doc)):>8.3f}")


if __name__ == "__main__":
    main()
