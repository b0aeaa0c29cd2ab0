"""The typed events a run yields; every output (terminal, JSON, JUnit, HTML) is a handler of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conformity.checks.model import Verdict

if TYPE_CHECKING:
    from conformity.catalog.models import Wave

#: what the terminal says of a run whose seed the caller chose (``usine run --seed``)
CALLER_SEED_NOTICE = ("note: --seed given: this run reproduces one with that seed, but cannot be labelled (the agency "
                      "takes only a run whose seed the sandbox drew: run again without --seed for a label)")



def wave_date_notice(wave: Wave, today: dt.date) -> str | None:
    """What the terminal says of a run made on a day the agency will not label it (or only with a warning): before
    the wave opens, after its labels' end, after its submission deadline; None on a day within the wave.

    The agency judges by the sandbox's signed time (``conformity.agency.decision``); the harness can only warn by the
    day it runs on, before a vendor spends a run it meant to submit.
    """
    if today < wave.open:
        return (f"note: {wave.id} opens on {wave.open.isoformat()}: the agency refuses a run made before (the day the "
                "sandbox signs in its traces); this run is for working on your software, not for a label")
    if today > wave.label_valid_until:
        return (f"note: {wave.id}'s labels ended on {wave.label_valid_until.isoformat()}: the agency issues none any "
                "more; see `usine wave list` for the waves open today")
    if today > wave.submission_deadline:
        return (f"note: {wave.id}'s submissions closed on {wave.submission_deadline.isoformat()}: the agency warns "
                "its reviewers of a run made after")
    return None


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
