"""The benchmarks' command-line values, checked where they are read: one place for what a count, a list of counts or a
pause may be, so that a bad value is refused by argparse (its option, the value, why; exit status 2)
before anything is generated, started or measured — never a traceback, never a run on a meaningless workload."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def count(minimum: int = 1) -> Callable[[str], int]:
    """An integer of at least ``minimum`` (``count(0)``: zero allowed)."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {minimum}")
        return value

    parse.__name__ = "count"  # argparse names the type in its message when the function raises something else
    return parse


def counts(minimum: int = 1) -> Callable[[str], list[int]]:
    """Comma-separated integers of at least ``minimum`` each (empty parts ignored; ``""``: none, a section left out)."""
    one = count(minimum)

    def parse(text: str) -> list[int]:
        out = []
        for part in text.split(","):
            if part.strip():
                try:
                    out.append(one(part.strip()))
                except argparse.ArgumentTypeError as exc:
                    raise argparse.ArgumentTypeError(f"in {text!r}: {exc}" if "," in text else str(exc)) from None
        return out

    parse.__name__ = "counts"
    return parse


def positive(text: str) -> float:
    """A finite number above zero (a pause, a duration, a load average)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be above zero")
    return value
