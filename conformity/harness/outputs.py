"""Drive a run to its end, and write its outputs (report.json, junit.xml, report.html, bundle.zip)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.bundle import write_bundle
from conformity.bundle.evidence import Attached
from conformity.files import output_set, write_atomic
from conformity.harness.events import Event, RunFinished, ScenarioFinished
from conformity.harness.runner import Runner
from conformity.reporting.html import report_html
from conformity.reporting.junit import junit_xml


@dataclass
class RunResult:
    """A finished run: its report, each scenario's trace (payload) and the signed traces that prove them."""

    report: dict[str, Any] = field(default_factory=dict)
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    signed_traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence: Attached = field(default_factory=Attached)


def run_to_end(runner: Runner, on_event: Callable[[Event], None] | None = None) -> RunResult:
    """Consume a run's events (passing each to ``on_event``); keep the report and every trace."""
    result = RunResult(evidence=runner.evidence)
    for event in runner.run():
        if on_event is not None:
            on_event(event)
        if isinstance(event, ScenarioFinished) and event.trace is not None:
            result.traces[event.scenario] = event.trace
            if event.signed_trace is not None:
                result.signed_traces[event.scenario] = event.signed_trace
        elif isinstance(event, RunFinished):
            result.report = event.report
    return result


#: what a run writes into its output folder (``write_outputs``), together
OUTPUTS = ("report.json", "junit.xml", "report.html", "bundle.zip")


def write_outputs(out: Path, result: RunResult) -> dict[str, Path]:
    """Write the four outputs of a run into ``out``, all or none (``files.output_set``); their paths."""
    junit, html = junit_xml(result.report), report_html(result.report, result.traces)
    with output_set(out, OUTPUTS) as temps:
        write_atomic(temps["report.json"], json.dumps(result.report, indent=2, ensure_ascii=False) + "\n")
        write_atomic(temps["junit.xml"], junit.decode("utf-8"))
        write_atomic(temps["report.html"], html)
        write_bundle(temps["bundle.zip"], result.report, result.signed_traces, junit, html, result.evidence.data)
    return {name: out / name for name in OUTPUTS}
