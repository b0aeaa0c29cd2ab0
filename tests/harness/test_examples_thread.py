"""Scenario inputs drawn by Hypothesis: on one thread of their own, the same whichever scenario thread asks.

Hypothesis' first run in a thread registers a PRNG for it with a full garbage collection, which froze every thread of
the harness (the sandbox serving the software included) once per scenario thread; the harness now draws every
example on one thread. The examples, and so the verdicts, must not depend on which thread asked.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from conformity.harness.scenario import on_examples_thread
from conformity.packs.health.scenarios.documents import generated_contents
from conformity.packs.health.scenarios.identity import generated_traits

SEEDS = (0, 1, 7, 2**31 + 5, 123456789, 42)


def test_every_draw_runs_on_the_one_examples_thread() -> None:
    where = on_examples_thread(lambda: threading.current_thread().name)
    with ThreadPoolExecutor(len(SEEDS), thread_name_prefix="scenario") as pool:
        names = set(pool.map(lambda _: where(), SEEDS))
    assert len(names) == 1 and names.pop().startswith("usine-examples")
    assert all(hasattr(f, "__wrapped__") for f in (generated_contents, generated_traits))  # drawn there too


def test_the_same_seed_draws_the_same_examples_from_any_thread_at_once() -> None:
    one_by_one = [(generated_contents(s), generated_traits(s)) for s in SEEDS]
    with ThreadPoolExecutor(len(SEEDS), thread_name_prefix="scenario") as pool:
        at_once = list(pool.map(lambda s: (generated_contents(s), generated_traits(s)), SEEDS))
    assert at_once == one_by_one
    assert all(contents and traits for contents, traits in one_by_one)
    assert len({repr(c) for c, _ in one_by_one}) == len(SEEDS)  # each seed its own examples
