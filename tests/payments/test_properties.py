"""Properties: any permutation, duplication or split of the same events yields the same payments."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.payments.engine import installation_updates
from tests.payments.builders import T0, event, installation
from tests.payments.mixed import same_data
from tests.payments.workspace import REPO, Workspace, ledger_state

SITES = [installation("750100011", "M"), installation("690200022", "L"), installation("130300033", "S"),
         installation("130300044", "S")]


@contextmanager
def workspace(cap: int | None = None) -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="usine-prop-"))
    try:
        ws = Workspace(root)
        if cap is not None:
            shutil.copytree(REPO / "referentials", root / "catalog" / "referentials")
            shutil.copytree(REPO / "waves", root / "catalog" / "waves")
            wave = root / "catalog" / "waves" / "2026-W1.toml"
            wave.write_text(wave.read_text().replace("cap_per_software = 8_000_000", f"cap_per_software = {cap}"))
            ws.catalog = root / "catalog"
        ws.label()
        yield ws
    finally:
        shutil.rmtree(root, ignore_errors=True)


@st.composite
def workloads(draw: st.DrawFn, copies: bool = False) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Events of a few installations (some enough to pay, some not), then the same events shuffled,
    some repeated, and split over one to three files. ``copies``: some of the events' data again, under other ids
    and times (``duplicate-data``: which copy counts is the first read, so only batches may vary, not the order)."""
    events = []
    for inst in SITES:
        hours = draw(st.lists(st.integers(min_value=0, max_value=24 * 50), max_size=8, unique=True))
        events += [event(inst, T0 + dt.timedelta(hours=h), i) for i, h in enumerate(hours)]
    if copies and events:
        for k, like in enumerate(draw(st.lists(st.sampled_from(events), max_size=4))):
            hour = draw(st.integers(min_value=0, max_value=24 * 50))
            inst = next(s for s in SITES if s["site"]["id"] == like["data"]["site"]["id"])
            events += same_data([event(inst, T0 + dt.timedelta(hours=hour), 100 + k)], like)
    repeats = draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    shuffled = draw(st.permutations(events + repeats))
    n_files = draw(st.integers(min_value=1, max_value=3))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(shuffled)), min_size=n_files - 1,
                                max_size=n_files - 1)))
    bounds = [0, *cuts, len(shuffled)]
    return events, [shuffled[a:b] for a, b in itertools.pairwise(bounds)]


def run_files(ws: Workspace, groups: list[list[dict[str, Any]]], ledger: Path, *, one_run: bool) -> dict[str, Any]:
    files = tuple(ws.events(f"{ledger.stem}-{i}.jsonl", g) for i, g in enumerate(groups))
    if one_run:
        ws.run_inproc(*files, ledger=ledger)
    else:
        for f in files:
            ws.run_inproc(f, ledger=ledger)
    return ledger_state(ledger)


@pytest.mark.slow  # hundreds of payment runs: ./test --slow, CI
@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_any_permutation_duplication_or_split_in_one_run_pays_the_same(work: Any) -> None:
    events, groups = work
    with workspace(cap=130_000) as ws:  # the cap binds: 62,000 + 115,000 > 130,000
        reference = run_files(ws, [sorted(events, key=lambda e: e["time"])], ws.root / "reference.sqlite3",
                              one_run=True)
        shuffled = run_files(ws, groups, ws.root / "shuffled.sqlite3", one_run=True)
    assert shuffled["payments"] == reference["payments"]  # same installations, amounts, labels and proofs
    # the same installations, counts, completions and best windows (exact while pending, the threshold once
    # qualified: whatever order or files the events came in)
    assert shuffled["installations"] == reference["installations"]


@pytest.mark.slow  # hundreds of payment runs: ./test --slow, CI
@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_any_split_over_successive_runs_pays_the_same_installations(work: Any) -> None:
    events, groups = work
    with workspace() as ws:
        reference = run_files(ws, [events], ws.root / "reference.sqlite3", one_run=True)
        split = run_files(ws, groups, ws.root / "split.sqlite3", one_run=False)
        again = run_files(ws, groups, ws.root / "split.sqlite3", one_run=True)  # everything once more
    paid = sorted((p[1], p[2], p[4]) for p in reference["payments"])
    assert sorted((p[1], p[2], p[4]) for p in split["payments"]) == paid
    assert again["payments"] == split["payments"]


@pytest.mark.slow  # hundreds of payment runs: ./test --slow, CI
@settings(derandomize=True, max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(copies=True), st.integers(min_value=1, max_value=4))
def test_batches_of_any_size_give_the_same_ledger(work: Any, every: int) -> None:
    """The installations intake keeps between batches (created, counted, qualified, refused as inconsistent, the
    data they counted) are the ledger's: segments of ``every`` lines, each its own batch, give the ledger of one
    batch."""
    _, groups = work
    lines = [e for g in groups for e in g]
    with workspace(cap=130_000) as ws:
        one = ws.events("one.jsonl", lines)
        many = ws.events("many.jsonl", lines, every=every)
        ws.run_inproc(one, ledger=ws.root / "one.sqlite3")
        ws.run_inproc(many, ledger=ws.root / "many.sqlite3", commit_every=1)
        reference, batched = ledger_state(ws.root / "one.sqlite3"), ledger_state(ws.root / "many.sqlite3")
    assert batched["payments"] == reference["payments"]
    assert batched["installations"] == reference["installations"]
    assert batched["events"] == reference["events"]  # each event's outcome: the same copy of the same data counted


def test_an_earlier_event_in_a_later_file_moves_a_qualified_installation_s_completion() -> None:
    """A qualified installation is recomputed only when a new event comes before its completion (a later one
    cannot end an earlier window): an event before it moves the completion earlier, events after it keep it."""
    inst = SITES[0]  # HOSPITAL: 5 counted events within 30 days
    day = [event(inst, T0 + dt.timedelta(days=d), d) for d in (0, 10, 20, 25, 29, 40, 5, 45, 50, 60)]
    with workspace() as ws:  # one run: the installation is paid at its end, after its three files
        reference = run_files(ws, [sorted(day, key=lambda e: e["time"])], ws.root / "reference.sqlite3",
                              one_run=True)
        split = run_files(ws, [day[:6], day[6:8], day[8:]], ws.root / "split.sqlite3", one_run=True)
    assert split == reference  # installations, payments and proofs as if all events were read at once
    ((*_, status, counted, best, _q_time, _q_source, q_id),) = split["installations"]
    assert (status, counted, best, q_id) == ("paid", 10, 5, day[3]["id"])  # day 25 completes, not day 29


def test_counts_are_the_event_store_s_whatever_a_killed_run_left_in_the_ledger() -> None:
    """A batch writes an installation's row only when its status, best window or completion changes; its count
    is set once per run from the event store, so counts a killed run left behind are made whole by the next."""
    inst = SITES[0]  # HOSPITAL: 5 counted events within 30 days
    day = [event(inst, T0 + dt.timedelta(days=d), d) for d in (0, 10, 20, 25, 29, 40, 45)]
    with workspace() as ws:
        ledger = ws.root / "ledger.sqlite3"
        first = run_files(ws, [day], ledger, one_run=True)
        db = sqlite3.connect(ledger)
        with db:  # as a run killed after committing its batches, before its counts
            db.execute("UPDATE installations SET counted = 1")
        db.close()
        again = run_files(ws, [day[:2]], ledger, one_run=True)  # nothing new: duplicates only
    ((*_, counted, _best, _q_time, _q_source, _q_id),) = first["installations"]
    assert counted == 7
    assert again["installations"] == first["installations"]


def test_installation_updates_are_only_what_changes() -> None:
    """The ledger's per-batch writes: a pending installation whose best window did not grow, nothing; one that
    qualifies, its status and completion; a best window above the threshold, the threshold."""
    completion = {"t": 50, "s": "src", "i": "e5"}
    state = {1: ("pending", 2, None, None, None, 5), 2: ("pending", 4, None, None, None, 5),
             3: ("qualified", 5, 40, "src", "e4", 5)}
    rows = [(1, 2, None), (2, 7, completion), (3, 6, None)]
    assert installation_updates(rows, state) == [("qualified", 5, 50, "src", "e5", 2)]
