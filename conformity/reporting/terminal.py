"""Terminal output of a run: a progress bar per referential, then a summary table."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from conformity.checks.registry import CHECKS
from conformity.harness.events import (
    CALLER_SEED_NOTICE,
    Event,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    wave_date_notice,
)
from conformity.harness.plan import Plan
from conformity.harness.report import rows_of, summary_of
from conformity.harness.scenario import SCENARIOS
from conformity.reporting.text import finding_text, visible

STYLE = {"pass": "green", "fail": "bold red", "error": "yellow", "not-exercised": "magenta", "evidence-required": "cyan",
         "not-applicable": "dim"}
NOT_PASSED = ("fail", "error", "not-exercised")
#: the longest finding the terminal prints whole (report.html and report.json hold every finding, with its evidence)
FINDING_CHARS = 600
#: how many run problems the terminal lists before saying how many more report.json holds
SHOWN_PROBLEMS = 12


def problem_lines(report: dict[str, Any]) -> list[str]:
    """The run's problems (steps that did not run as planned), one line each, the first ones only."""
    problems = report.get("problems", [])
    lines = [visible(f"{p['kind']:<11} {p['scenario']}" + (f" step {p['step']!r}" if p["step"] else "")
                     + f": {p['message']}") for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"… and {len(problems) - SHOWN_PROBLEMS} more (report.json, 'problems')")
    return lines


def scenario_referential(plan: Plan, scenario: str) -> str:
    """The referential a scenario mostly serves (for grouping progress): among the planned requirements, the
    referential most verified by the checks it is the scenario of, else by the checks that read its trace too
    (a scenario only read, like a second login after a key rotation, serves what those checks verify)."""
    planned = {p.id for p in plan.requirements}
    own: Counter[str] = Counter()
    read: Counter[str] = Counter()
    for cid in plan.checks:
        check = CHECKS.get(cid)
        served = [r.rsplit("-", 1)[0] for r in check.verifies if r in planned]
        if check.scenario == scenario:
            own.update(served)
        elif scenario in check.scenarios:
            read.update(served)
    refs = own or read
    return refs.most_common(1)[0][0] if refs else "OTHER"


def finding_line(finding: dict[str, Any]) -> str:
    """A finding as one paragraph: its message, where in the trace, what was expected and seen (shortened when
    longer than ``FINDING_CHARS``)."""
    text = finding_text(finding)
    if len(text) > FINDING_CHARS:
        text = text[:FINDING_CHARS].rsplit(" ", 1)[0] + " … (report.json has it whole)"
    return text


class TerminalReporter:
    """Handles run events on a rich console."""

    def __init__(self, plan: Plan, console: Console | None = None, today: dt.date | None = None):
        self.plan = plan
        self.today = today  # the day the run is made (None: today's, UTC), for what the wave's dates say of it
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[current]}"), TimeElapsedColumn(), console=self.console,
                                 transient=False, disable=not self.console.is_terminal)
        self.tasks: dict[str, Any] = {}
        self.group = {s: scenario_referential(plan, s) for s in plan.scenarios}

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.console.print(f"usine run — wave {event.wave}, category {event.category}, "
                               f"seed {'the sandbox’s (revealed at the end)' if event.seed is None else event.seed}: "
                               f"{event.requirements} requirements, {len(event.scenarios)} scenarios "
                               f"(run {event.run_id}, attempt {event.attempt})")
            if event.seed_source == "caller":
                self.console.print(CALLER_SEED_NOTICE, markup=False)
            dated = wave_date_notice(self.plan.spec.wave, self.today or dt.datetime.now(dt.UTC).date())
            if dated:
                self.console.print(dated, markup=False)
            totals = Counter(self.group.values())
            for ref, n in sorted(totals.items()):
                self.tasks[ref] = self.progress.add_task(ref, total=n, current="")
            self.progress.start()
        elif isinstance(event, ScenarioFinished):
            ref = self.group.get(event.scenario, "OTHER")
            # the error is the sandbox's or the driver's text: printed as is, never read as rich markup
            problem = f" [red]({escape(visible(event.error or 'driver ' + str(event.driver_failures[0].get('kind', ''))))})[/]" \
                if (event.error or event.driver_failures) else ""
            self.progress.update(self.tasks[ref], advance=1, current=SCENARIOS.get(event.scenario).id + problem)
            if not self.console.is_terminal:
                self.console.print(f"  {ref:<10} {event.scenario} {event.duration_s:.2f}s{problem}")
        elif isinstance(event, RunFinished):
            self.progress.stop()
            self.summary(event.report)

    def summary(self, report: dict[str, Any]) -> None:
        problems = report.get("problems", [])
        if problems:
            kinds = Counter(p["kind"] for p in problems)
            head = ("YOUR DRIVER DID NOT ANSWER PROPERLY" if kinds.get("driver") else "THE RUN DID NOT GO AS PLANNED")
            self.console.print(f"[bold red]{head}[/]: {len(problems)} step(s) did not run as planned "
                               f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); the requirements judged on "
                               "them are error or not-exercised, not failures of your software:")
            for line in problem_lines(report):
                self.console.print(f"  {line}", markup=False, highlight=False)
        v = report["vendor"]
        # four narrow columns, whatever the width (80 in a CI log); the findings follow, each on full-width lines
        self.console.print(Text(visible(f"{v['software']} {v['version']} — {report['wave']} {report['category']}"),
                                style="bold"))
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for col in ("requirement", "level", "proof", "verdict"):
            table.add_column(col, no_wrap=True)
        rows = sorted(rows_of(report), key=lambda r: ({"fail": 0, "error": 1, "not-exercised": 2}.get(r.verdict, 3), r.id))
        for r in rows:
            table.add_row(r.id, r.level, r.method, Text(r.verdict, style=STYLE.get(r.verdict, "")))
        self.console.print(table)
        failing = [r for r in rows if r.verdict in NOT_PASSED]
        if failing:
            self.console.print("\nFirst finding of each requirement not passed (report.html: every finding, with the "
                               "trace excerpt that decided it):", markup=False, highlight=False)
        for r in failing:
            self.console.print(Text.assemble((r.id, "bold"), " ", (r.verdict, STYLE.get(r.verdict, "")),
                                             f" ({r.level}, checks {', '.join(r.checks) or 'none'})"), highlight=False)
            message = finding_line(r.findings[0]) if r.findings else "no finding recorded"
            self.console.print(Padding(Text(message), (0, 0, 0, 4), expand=False), highlight=False)
        s = summary_of(report)
        verdict = "[green]every automated MUST passed[/]" if s.passed else \
            f"[bold red]{len(s.failed_must)} MUST failed, {len(s.errored_must)} in error, " \
            f"{len(s.not_exercised_must)} not exercised[/]"
        attached = report.get("evidence", {})
        missing = [r for r in s.evidence_required if r not in attached]
        self.console.print(f"{s.must_passed}/{s.must_automated} automated MUST passed — {verdict}; "
                           f"{len(s.evidence_required)} requirement(s) need document or manual evidence: "
                           f"{len(set(s.evidence_required) & set(attached))} attached for the agency's review"
                           + (f", none for {', '.join(missing)}" if missing else ""))
