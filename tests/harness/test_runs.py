"""The harness runs what the sandbox issues: one run created first, each scenario a session of it.

The run's id, seed and attempt number are the sandbox's (the report and every trace agree); ``--seed`` is passed
as the caller's seed, recorded as such (a run that reproduces, not one for a label), and said when the run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from conformity.catalog import load_catalog
from conformity.harness.events import CALLER_SEED_NOTICE, RunStarted
from conformity.harness.plan import make_plan
from conformity.harness.sandbox_access import SandboxAccess, SandboxUnavailable
from conformity.reporting.terminal import TerminalReporter
from conformity.runs import SANDBOX_SEED_BOUND, read_seed, scenario_seed, seed_commitment

ONLY = ("PRACAUTH-001",)


def test_a_run_is_the_sandboxs_and_every_trace_names_it(run_harness: Callable[..., Any]) -> None:
    report, traces = run_harness("reference", only=ONLY, seed=None)
    again, _ = run_harness("reference", only=ONLY, seed=None)
    assert report["run_id"].startswith("run_") and report["seed_source"] == "sandbox"
    assert again["attempt"] == report["attempt"] + 1 and again["run_id"] != report["run_id"]
    assert traces
    for scenario, trace in traces.items():
        assert trace["session"]["run"] == {"id": report["run_id"], "wave": report["wave"],
                                           "category": report["category"], "seed_source": "sandbox",
                                           "seed_commitment": seed_commitment(read_seed(report["seed"])),
                                           "attempt": report["attempt"], "scenario": scenario}
        assert trace["session"]["seed"] == scenario_seed(read_seed(report["seed"]), scenario)


def test_a_seed_given_is_the_callers_and_reproduces(run_harness: Callable[..., Any]) -> None:
    report, traces = run_harness("reference", only=ONLY, seed=1234)
    assert (report["seed"], report["seed_source"]) == (1234, "caller")
    assert all(t["session"]["run"]["seed_source"] == "caller" for t in traces.values())
    again, _ = run_harness("reference", only=ONLY, seed=1234)
    assert [r["verdict"] for r in again["requirements"]] == [r["verdict"] for r in report["requirements"]]


def test_a_run_plays_each_scenario_once(harness_sandbox: SandboxAccess, run_harness: Callable[..., Any]) -> None:
    report, traces = run_harness("reference", only=ONLY, seed=None)
    bound = next(iter(traces.values()))["session"]["bound_to"]
    access = harness_sandbox.bind(bound["vendor_id"], bound["software_id"])
    with access.admin() as admin:
        r = admin.post("/admin/sessions", json={"run_id": report["run_id"], "scenario": next(iter(traces))})
    assert r.status_code == 409 and r.json()["code"] == "run-finished"  # the harness finished it: its seed is out


def test_a_sandbox_seed_is_revealed_at_the_finish_and_reproduces_the_run(run_harness: Callable[..., Any]) -> None:
    """The harness plays a run whose seed it does not know (each scenario's inputs drawn from its session's seed),
    finishes it, and records the seed the sandbox then reveals (128 bits): ``--seed`` with it plays the same
    scenario seeds and gives the same verdicts (a reproduction, the caller's seed: not for a label)."""
    report, traces = run_harness("reference", only=ONLY, seed=None)
    seed = read_seed(report["seed"])  # its decimal digits: above 2**53 - 1
    assert 2**53 <= seed < SANDBOX_SEED_BOUND and report["seed"] == str(seed)  # 2**-75 odds of a drawn seed below 2**53
    again, retraced = run_harness("reference", only=ONLY, seed=seed)
    assert again["seed_source"] == "caller" and again["seed"] == report["seed"]
    assert {s: t["session"]["seed"] for s, t in retraced.items()} == {s: t["session"]["seed"] for s, t in traces.items()}
    assert [(r["id"], r["verdict"]) for r in again["requirements"]] == [(r["id"], r["verdict"])
                                                                         for r in report["requirements"]]


def test_the_terminal_says_a_chosen_seed_cannot_be_labelled() -> None:
    plan = make_plan(load_catalog(), "2026-W1", "GP", ONLY)
    for source, said in (("caller", True), ("sandbox", False)):
        console = Console(record=True, width=300)
        TerminalReporter(plan, console).handle(RunStarted("2026-W1", "GP", 5, plan.scenarios, 1, "run_x", source, 2))
        text = console.export_text()
        assert (CALLER_SEED_NOTICE in text) is said and "attempt 2" in text, text


def test_a_sandbox_that_refuses_the_run_stops_it_with_its_reason(run_harness: Callable[..., Any]) -> None:
    with pytest.raises(SandboxUnavailable, match="refused to create the run"):
        run_harness("reference", only=ONLY, seed=SANDBOX_SEED_BOUND)  # beyond what the sandbox takes


@settings(derandomize=True, max_examples=200)
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_a_seed_reads_back_from_either_form(seed: int) -> None:
    """report.json and the manifest write a seed above 2**53 - 1 as its digits; earlier bundles wrote numbers."""
    from conformity.runs import JCS_MAX_INT, canonical_seed

    written = canonical_seed(seed)
    assert isinstance(written, int) == (seed <= JCS_MAX_INT)
    assert read_seed(written) == seed == read_seed(seed) == read_seed(str(seed))


@pytest.mark.parametrize("value", ["", "-1", "01", "1e3", "١٢", " 7", True, 1.0, None, -1, 2**128, str(2**128)])
def test_anything_else_is_not_a_seed(value: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        read_seed(value)


def test_a_run_stopped_midway_is_finished_at_the_sandbox(harness_sandbox: SandboxAccess) -> None:
    """A run whose consumer stops (Ctrl-C, an error, a plugin's -x) left its sessions open: each held a place of its
    vendor's live sessions for hours. The runner finishes the run on the way out, which frees them."""
    from conformity.harness.events import ScenarioStarted
    from conformity.harness.runner import Runner
    from conformity.harness.vendor import load_vendor
    from tests.harness.helpers import vendor_manifest

    vendor = load_vendor(vendor_manifest("reference"))
    runner = Runner(make_plan(load_catalog(), "2026-W1", "GP", ONLY), vendor, None, harness_sandbox)
    events = runner.run()
    for event in events:
        if isinstance(event, ScenarioStarted):
            break
    events.close()  # type: ignore[attr-defined]  # a generator; the consumer gone with the scenario under way
    access = harness_sandbox.bind(vendor.vendor_id, vendor.software_id)
    with access.admin() as admin:
        run = admin.get(f"/admin/runs/{runner.run_id}").json()
    assert run["finished"] and run["seed"] is not None, run


def test_a_scenario_waits_for_a_place_when_its_vendors_live_sessions_are_all_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run of the same software in flight holds the vendor's live-session places (429 live-sessions): the
    scenario failed at once with "sandbox error: Client error '429 Too Many Requests'". It now asks again every
    second, for up to a minute, and plays once a place frees; past that, its error says the sandbox's problem."""
    from conformity.harness import sandbox_access
    from conformity.harness.outputs import run_to_end
    from conformity.harness.runner import Runner
    from conformity.harness.sandbox_access import start_local
    from conformity.harness.vendor import load_vendor
    from tests.harness.helpers import vendor_manifest

    vendor = load_vendor(vendor_manifest("reference"))
    plan = make_plan(load_catalog(), "2026-W1", "GP", ("PRACAUTH-001", "PATIENTID-001"))
    assert len(plan.scenarios) == 2
    access = start_local(tmp_path / "sandbox", vendor_live_sessions=1)
    try:
        # two scenarios at once, one place: the second waits for the first's
        report = run_to_end(Runner(plan, vendor, 7, access, parallel=2)).report
        assert all(s["trace"] for s in report["scenarios"]), report["scenarios"]
        # the place held by a session no run closes: the scenario's error is the sandbox's problem
        bound = access.bind(vendor.vendor_id, vendor.software_id)
        with bound.admin() as admin:
            assert admin.post("/admin/sessions", json={"seed": 1}).status_code == 201
        monkeypatch.setattr(sandbox_access, "PLACE_WAIT_S", 2.0)
        monkeypatch.setattr("conformity.harness.runner.open_session",
                            lambda admin, body: sandbox_access.open_session(admin, body, wait=2.0))
        report = run_to_end(Runner(make_plan(load_catalog(), "2026-W1", "GP", ("PRACAUTH-001",)), vendor, 7,
                                   access)).report
        errors = [s.get("error") or "" for s in report["scenarios"]]
        assert any("vendor-bound-reached" in e and "live" in e for e in errors), report["scenarios"]
    finally:
        access.close()
