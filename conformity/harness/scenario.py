"""Scenarios: what the harness asks the driver to do (and which faults the sandbox injects).

Scenarios are kept apart from evaluation: a scenario produces a trace; checks read it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformity.checks.registry import Registry


@dataclass
class ScenarioContext:
    """What a step's input factory may use: the session's fixtures, a seeded RNG, earlier outputs."""

    fixtures: dict[str, Any]
    seed: int
    outputs: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def patient(self, scenario: str = "match", index: int = 0) -> dict[str, Any]:
        found = [p for p in self.fixtures.get("patients", ()) if p["scenario"] == scenario]
        return found[index % len(found)]

    def practitioner(self, index: int = 0) -> dict[str, Any]:
        pracs = self.fixtures["practitioners"]
        return pracs[index % len(pracs)]


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


Step = Perform | SetFaults


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    steps: tuple[Step, ...]
    uses_untrusted_tls: bool = False

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.action for s in self.steps if isinstance(s, Perform)))


SCENARIOS: Registry[Scenario] = Registry("scenario")


def scenario(sid: str, title: str, *steps: Step, uses_untrusted_tls: bool = False) -> Scenario:
    """Define and register a scenario."""
    return SCENARIOS.register(sid, Scenario(sid, title, tuple(steps), uses_untrusted_tls))
