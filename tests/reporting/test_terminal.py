"""The terminal output of a run: progress grouped by referential, and a result table readable in a CI log."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from rich.console import Console

from conformity import plugins
from conformity.catalog import load_catalog
from conformity.harness.events import RunStarted, ScenarioFinished, wave_date_notice
from conformity.harness.plan import make_plan
from conformity.harness.report import RequirementRow, summarise
from conformity.reporting.terminal import TerminalReporter, scenario_referential

plugins.register_all()  # every installed pack's checks and scenarios

WAVES = ("2026-W1", "2027-W2")


@pytest.mark.parametrize("wave", WAVES)
@pytest.mark.parametrize("only", [(), ("PRACAUTH",)])
def test_every_scenario_is_shown_under_a_referential_it_serves(wave: str, only: tuple[str, ...]) -> None:
    """A scenario that checks only read (``reads=``, like a key rotation read by a faults check) was labelled
    ``OTHER``: it serves the referential of the requirements those checks verify, among the planned ones."""
    plan = make_plan(load_catalog(), wave, "GP", only)
    planned = {p.id.rsplit("-", 1)[0] for p in plan.requirements}
    labels = {s: scenario_referential(plan, s) for s in plan.scenarios}
    assert set(labels.values()) <= planned, labels
    if only:
        assert set(labels.values()) == {"PRACAUTH"}, labels


# ------------------------------------------------------------------------------------------ the result table

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
LONG = ("step 'alg_none': the software accepted the ID token with an algorithm the provider does not list "
        "(none, or HS256 keyed with the client secret) instead of refusing it and showing the login error")
#: what a vendor's software put in a finding (a driver's answer, a header it sent): rich markup must not apply
MARKUP = "the driver answered [/] [bold red]ok[/bold red] [link=https://evil.example]click[/link] [/x]"


def _report(n_pass: int = 3) -> dict[str, Any]:
    rows = [RequirementRow("PRACAUTH-007", "PRACAUTH@1.0#PRACAUTH-007", "ID token algorithm", "MUST", "security",
                           "automated", ("oidc.alg",), "fail", ({"message": LONG, "exchange": 7},)),
            RequirementRow("PRACAUTH-008", "PRACAUTH@1.0#PRACAUTH-008", "Nonce", "MUST", "security",
                           "automated", ("oidc.nonce",), "error", ({"message": MARKUP},)),
            RequirementRow("PRACAUTH-016", "PRACAUTH@1.0#PRACAUTH-016", "Guide", "MUST", "usability",
                           "document", (), "evidence-required", (), "the user guide")]
    rows += [RequirementRow(f"PRACAUTH-{100 + i:03d}", f"PRACAUTH@1.0#PRACAUTH-{100 + i:03d}", "t", "MUST",
                            "security", "automated", ("oidc.x",), "pass") for i in range(n_pass)]
    return {"vendor": {"software": "RefApp [bold]x[/bold] (accepts unsigned ID tokens)", "version": "1.0.0"},
            "wave": "2027-W2", "category": "HOSPITAL", "requirements": [r.to_json() for r in rows],
            "summary": summarise(rows), "evidence": {}, "problems": []}


def _summary(console: Console, report: dict[str, Any]) -> str:
    plan = make_plan(load_catalog(), "2027-W2", "GP", ("PRACAUTH",))
    TerminalReporter(plan, console).summary(report)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_the_result_table_is_readable_at_80_columns_in_a_ci_log() -> None:
    """A CI log is no terminal, 80 columns: no line longer, no escape code, every finding whole (not cut at 120
    characters in the middle of a word, nor folded into a 20-column cell), a failure's id beside it."""
    out = _summary(Console(file=io.StringIO(), width=80, force_terminal=False), _report())
    assert not ANSI.search(out), out
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(line for line in lines if len(line) > 80)
    flat = " ".join(" ".join(lines).split())
    assert LONG in flat, out
    assert re.search(r"PRACAUTH-007\b.*\bfail\b", out), out


def test_vendor_text_is_printed_as_is_not_read_as_markup() -> None:
    """A finding, a software name carrying rich markup (``[/]`` closes nothing: the summary raised MarkupError,
    and the run ended before writing any report) is printed literally."""
    out = _summary(Console(file=io.StringIO(), width=200, force_terminal=False), _report())
    flat = " ".join(out.split())
    assert MARKUP in flat and "RefApp [bold]x[/bold]" in flat, out


def test_no_colour_under_no_color_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = _summary(Console(file=io.StringIO(), width=100, force_terminal=True), _report())
    assert not COLOUR.search(out), repr(out)
    monkeypatch.delenv("NO_COLOR")
    coloured = _summary(Console(file=io.StringIO(), width=100, force_terminal=True), _report())
    assert COLOUR.search(coloured), "a terminal without NO_COLOR shows verdicts in colour"


def test_a_large_run_lists_what_did_not_pass_first_and_counts_the_rest() -> None:
    """Hundreds of passes: the requirements that did not pass come first, with their finding, then the rest."""
    out = _summary(Console(file=io.StringIO(), width=80, force_terminal=False), _report(n_pass=300))
    assert out.index("PRACAUTH-007") < out.index("PRACAUTH-100")
    assert out.index("PRACAUTH-008") < out.index("PRACAUTH-100")


def test_a_failure_says_where_and_what_was_expected_and_seen() -> None:
    report = _report()
    report["requirements"][0]["findings"] = [{"message": "the software opened a session", "exchange": 19,
                                              "scenario": "pracauth.login_faults", "where": "output.authenticated",
                                              "expected": False, "got": True}]
    flat = " ".join(_summary(Console(file=io.StringIO(), width=80, force_terminal=False), report).split())
    assert ("the software opened a session [scenario pracauth.login_faults, exchange 19, at output.authenticated] "
            "— expected false, got true") in flat, flat


def test_a_scenario_error_with_markup_is_printed_as_is() -> None:
    """The progress line of a scenario the sandbox could not run shows its error text literally."""
    plan = make_plan(load_catalog(), "2027-W2", "GP", ("PRACAUTH",))
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    reporter = TerminalReporter(plan, console)
    reporter.handle(RunStarted("2027-W2", "GP", 5, plan.scenarios, 1, "run_x", "sandbox", 1))
    reporter.handle(ScenarioFinished(plan.scenarios[0], None, None, 0.5, error="refused [/] [bold]x[/bold]"))
    assert "refused [/] [bold]x[/bold]" in console.file.getvalue()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ the wave's dates

@pytest.mark.parametrize("today,said", [
    (dt.date(2027, 1, 14), "note: 2027-W2 opens on 2027-01-15: the agency refuses a run made before"),
    (dt.date(2027, 1, 15), None),
    (dt.date(2027, 9, 30), None),
    (dt.date(2027, 10, 1), "note: 2027-W2's submissions closed on 2027-09-30"),
    (dt.date(2030, 1, 1), "note: 2027-W2's labels ended on 2029-12-31"),
])
def test_a_run_made_outside_its_wave_says_so_as_it_starts(today: dt.date, said: str | None) -> None:
    """A vendor following the README ran 2027-W2 (or 2027-W4) in 2026 and learnt only from the agency's refusal
    ("the run started before the wave opened: run again") that the run could never be labelled."""
    plan = make_plan(load_catalog(), "2027-W2", "GP", ("PRACAUTH-001",))
    notice = wave_date_notice(plan.spec.wave, today)
    assert (notice is None) if said is None else (notice is not None and notice.startswith(said)), notice
    out = io.StringIO()
    reporter = TerminalReporter(plan, Console(file=out, width=200, force_terminal=False), today=today)
    reporter.handle(RunStarted(wave="2027-W2", category="GP", seed=None, scenarios=plan.scenarios, requirements=1,
                               run_id="run_x", attempt=1))
    reporter.progress.stop()
    notes = [line for line in out.getvalue().splitlines() if line.startswith("note: 2027-W2")]
    if said is None:
        assert notes == [], out.getvalue()
    else:
        assert len(notes) == 1 and notes[0].startswith(said), out.getvalue()
