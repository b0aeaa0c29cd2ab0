"""The typed events a run yields; every output (terminal, JSON, JUnit, HTML) is a handler of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformity.checks.model import Verdict

#: what the terminal says of a run whose seed the caller chose (``usine run --seed``)
CALLER_SEED_NOTICE = ("note: --seed given: this run reproduces one with that seed, but cannot be labelled (the agency "
                      "takes only a run whose seed the sandbox drew: run again without --seed for a label)")


@dataclass(frozen=True, slots=True)
class RunStarted:
    wave: str
    category: str
    seed: int | None  # None: the sandbox drew it, its secret until the run is finished (the report has it)
    scenarios: tuple[str, ...]
    requirements: int
    run_id: str = ""
    seed_source: str = "sandbox"  # "caller": the seed was given (``--seed``), the run cannot be labelled
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class ScenarioStarted:
    scenario: str
    title: str
    index: int
    total: int


@dataclass(frozen=True, slots=True)
class ScenarioFinished:
    scenario: str
    session_id: str | None
    trace: dict[str, Any] | None  # what the sandbox recorded (the signed trace's payload)
    duration_s: float
    driver_failures: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    signed_trace: dict[str, Any] | None = None  # the trace as the sandbox signed it (a JWS), for the bundle


@dataclass(frozen=True, slots=True)
class CheckEvaluated:
    check: str
    scenario: str | None
    verdict: Verdict
    duration_ms: float


@dataclass(frozen=True, slots=True)
class RunFinished:
    report: dict[str, Any] = field(default_factory=dict)


Event = RunStarted | ScenarioStarted | ScenarioFinished | CheckEvaluated | RunFinished
