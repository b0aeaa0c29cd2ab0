"""Scenarios: what the harness asks the driver to do (and which faults the sandbox injects).

Scenarios are kept apart from evaluation: a scenario produces a trace; checks read it.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar

from conformity.checks.registry import Registry

P = ParamSpec("P")
R = TypeVar("R")

#: the one thread that draws Hypothesis examples for step inputs (see :func:`on_examples_thread`)
_EXAMPLES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usine-examples")


def on_examples_thread(draw: Callable[P, R]) -> Callable[P, R]:
    """Run ``draw`` (Hypothesis examples for a scenario's inputs) on the one thread that draws them all.

    Hypothesis gives each thread it first runs in a PRNG of its own and registers it with a full garbage collection:
    in the harness, whose heap holds the run's traces, that froze every thread (the sandbox answering the software
    included) for a tenth of a second or more, once per scenario thread, as the run starts. The examples are the same
    whichever thread draws them (each draw is seeded).
    """

    @functools.wraps(draw)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return _EXAMPLES.submit(draw, *args, **kwargs).result()

    return run


class SeededDraw(Generic[R]):
    """Examples drawn by Hypothesis from a scenario's seed, on the one examples thread (:func:`on_examples_thread`),
    that the runner may start ahead (:meth:`ahead`): as the scenario starts, while its driver starts up and its first
    steps run, instead of when a step's input first needs them (a scenario held a quarter to a whole second there,
    behind the other scenarios' draws, on its way to its Retry-After waits). Calling it with a seed takes the
    examples drawn ahead for that seed, once, or draws them now: the same examples either way (each draw is seeded).
    """

    def __init__(self, draw: Callable[[int], R]):
        functools.update_wrapper(self, draw)
        self._draw = draw
        self._ahead: dict[int, Future[R]] = {}
        self._lock = threading.Lock()

    def __call__(self, seed: int) -> R:
        with self._lock:
            future = self._ahead.pop(seed, None)
        return (future or _EXAMPLES.submit(self._draw, seed)).result()

    def ahead(self, seed: int) -> None:
        """Start drawing the examples of ``seed`` on the examples thread (behind the draws started earlier)."""
        with self._lock:
            if seed not in self._ahead:
                self._ahead[seed] = _EXAMPLES.submit(self._draw, seed)

    def forget(self, seed: int) -> None:
        """Drop examples drawn ahead for ``seed`` that no step took (the scenario ended without them)."""
        with self._lock:
            self._ahead.pop(seed, None)


def seeded_draw(draw: Callable[[int], R]) -> SeededDraw[R]:
    """Decorator: ``draw(seed)`` as a :class:`SeededDraw`."""
    return SeededDraw(draw)


@dataclass
class ScenarioContext:
    """What a step's input factory may use: the session's fixtures, a seeded RNG, earlier outputs.

    ``listeners`` are the sandbox's base URLs by role (``trusted``, then one per bad TLS class of
    :data:`sandbox.tls.LISTENER_CLASSES`: ``self_signed``, ``expired``, ``tls1_1``…), for scenarios that
    hand the software a deliberately misconfigured endpoint (``at``).
    """

    fixtures: dict[str, Any]
    seed: int
    outputs: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, str] = field(default_factory=dict)
    #: the pinned referentials' requirement parameters (codes, templateIds…), by requirement id
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the pinned actions' input properties, by action name
    inputs: dict[str, frozenset[str]] = field(default_factory=dict)

    def param(self, requirement: str, name: str, default: Any = None) -> Any:
        """A parameter of a requirement of the wave's pinned referentials (the same value its checks read)."""
        return self.parameters.get(requirement, {}).get(name, default)

    def takes(self, action: str, name: str) -> bool:
        """Whether the pinned ``action`` declares the input property ``name`` (optional inputs of later versions)."""
        return name in self.inputs.get(action, frozenset())

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def at(self, listener: str, service: str, path: str = "") -> str | None:
        """The URL of a session ``service`` (plus ``path``) on another listener; None if there is none."""
        trusted, other = self.listeners.get("trusted"), self.listeners.get(listener)
        url = self.endpoints.get(service)
        if not (trusted and other and url and url.startswith(trusted)):
            return None
        return other + url[len(trusted):].rstrip("/") + path


Input = dict[str, Any] | Callable[[ScenarioContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Perform:
    """Ask the driver to perform an action; its output is kept under ``name`` for later steps."""

    action: str
    input: Input
    name: str = ""

    def resolve(self, ctx: ScenarioContext) -> dict[str, Any]:
        return self.input(ctx) if callable(self.input) else dict(self.input)


@dataclass(frozen=True, slots=True)
class SetFaults:
    """Inject (or clear, with None) faults into sandbox services for the following steps."""

    faults: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Shrink:
    """If a step named ``after…`` was refused by ``service`` with ``outcome``, shrink its input with the driver.

    See :mod:`conformity.harness.shrink`; attempts and result are recorded as harness notes.
    """

    action: str
    after: str
    service: str
    outcome: str
    fields: tuple[str, ...]
    max_attempts: int = 60


Step = Perform | SetFaults | Shrink


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    steps: tuple[Step, ...]
    #: service → listener class: the software is configured with that service's endpoint on a bad listener
    endpoints_on: dict[str, str] = field(default_factory=dict)
    #: about how long the scenario takes (waits it must make: Retry-After, timeouts); the runner starts
    #: the longest first
    expected_seconds: float = 1.0
    #: the examples its steps' inputs draw from the scenario seed: the runner starts drawing them as it starts
    draws: tuple[SeededDraw[Any], ...] = ()

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.action for s in self.steps if isinstance(s, (Perform, Shrink))))


SCENARIOS: Registry[Scenario] = Registry("scenario")


def scenario(sid: str, title: str, *steps: Step, endpoints_on: dict[str, str] | None = None,
             expected_seconds: float = 1.0, draws: tuple[SeededDraw[Any], ...] = ()) -> Scenario:
    """Define and register a scenario."""
    return SCENARIOS.register(sid, Scenario(sid, title, tuple(steps), dict(endpoints_on or {}), expected_seconds,
                                            draws))
