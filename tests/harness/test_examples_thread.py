"""Scenario inputs drawn by Hypothesis: on one thread of their own, the same whichever scenario thread asks.

Hypothesis' first run in a thread registers a PRNG for it with a full garbage collection, which froze every thread of
the harness (the sandbox serving the software included) once per scenario thread; the harness now draws every
example on one thread. The examples, and so the verdicts, must not depend on which thread asked.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conformity.harness.scenario import SeededDraw, on_examples_thread, seeded_draw
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


def test_examples_drawn_ahead_are_those_drawn_when_asked_and_taken_once() -> None:
    calls: list[int] = []

    @seeded_draw
    def draw(seed: int) -> tuple[str, int]:
        calls.append(seed)
        return threading.current_thread().name, seed

    draw.ahead(5)
    draw.ahead(5)  # already started: not drawn twice
    thread, seed = draw(5)
    assert seed == 5 and thread.startswith("usine-examples") and calls == [5]
    assert draw(5) == (thread, 5) and calls == [5, 5]  # taken once: the next call draws again
    draw.ahead(6)
    draw.forget(6)  # the scenario ended without it: the next call draws again
    assert draw(6) == (thread, 6) and calls == [5, 5, 6, 6]
    assert [generated_contents(s) for s in SEEDS] == [_ahead_then_taken(generated_contents, s) for s in SEEDS]
    assert generated_traits(SEEDS[0] + 2**32) == generated_traits(SEEDS[0])  # a scenario seed is reduced to Hypothesis'


def _ahead_then_taken(draw: SeededDraw[Any], seed: int) -> Any:
    draw.ahead(seed)
    return draw(seed)
