"""How long a run's scenarios took, by the sandbox's signed times: from a session's opening to its trace's last entry.

The harness opens a scenario's session as it starts playing it and plays it in seconds (a few driver answers, a
``Retry-After`` or two). A session opened long before its last exchange is a scenario played by hand, or whose
inputs (drawn from its session's answer) were studied before the software was made to act on them: the decision
says so to the agency (a warning, :data:`LONG_SCENARIO`), for the sandbox's times are signed and cannot be edited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformity.labels import parse_time

#: a scenario lasting longer than this, session opened to last exchange, is pointed out to the agency (the slowest
#: driver the vendor manifest allows answers each step within 10 minutes; the harness's scenarios take seconds)
LONG_SCENARIO = dt.timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Longest:
    """The run's longest scenario and how many whole seconds it lasted, session opened to last exchange."""

    scenario: str
    seconds: int

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: Any) -> Longest | None:
        """None for a run recorded before its scenarios' times were kept."""
        if not isinstance(data, Mapping):
            return None
        return cls(str(data["scenario"]), int(data["seconds"]))

    @property
    def long(self) -> bool:
        return self.seconds > LONG_SCENARIO.total_seconds()

    def said(self) -> str:
        """``12 min 5 s`` / ``42 s``."""
        minutes, seconds = divmod(self.seconds, 60)
        return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def scenario_seconds(trace: Mapping[str, Any]) -> int | None:
    """Whole seconds from the session's opening to the trace's last entry (None when the trace says neither)."""
    session, exchanges = trace.get("session"), trace.get("exchanges")
    created = session.get("created") if isinstance(session, Mapping) else None
    times = [e["time"] for e in exchanges or () if isinstance(e, Mapping) and isinstance(e.get("time"), str)]
    if not isinstance(created, str) or not times:
        return None
    try:
        opened, last = parse_time(created), max(parse_time(t) for t in times)
    except ValueError:
        return None
    return max(0, int((last - opened).total_seconds()))


def longest_scenario(traces: Mapping[str, Mapping[str, Any]]) -> Longest | None:
    """The scenario of ``traces`` (scenario → verified trace) that lasted longest, or None when none says its times."""
    lasted = [(seconds, scenario) for scenario, trace in traces.items()
              if (seconds := scenario_seconds(trace)) is not None]
    if not lasted:
        return None
    seconds, scenario = max(lasted)  # the most seconds; of equals, the last scenario id
    return Longest(scenario, seconds)
