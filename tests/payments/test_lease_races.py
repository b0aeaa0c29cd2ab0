"""Payment runs started at the same instant on one ledger: one holds it, every other is refused (no hole found)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from conformity.payments.lease import LedgerBusy
from conformity.payments.ledger import Ledger

RUNS = 4
BOUND = 60.0


def _open_at_once(path: str, start: Any, held: Any, results: Any) -> None:
    """A separate process opening the ledger (as ``usine pay run`` does) once every process is ready; it keeps the
    ledger until every process has tried."""
    start.wait(timeout=BOUND)
    try:
        with Ledger(Path(path)):
            results.put("held")
            held.wait(timeout=BOUND)
    except LedgerBusy:
        results.put("busy")
        held.wait(timeout=BOUND)
    except Exception as exc:  # reported: anything else is a defect
        results.put(f"{type(exc).__name__}: {exc}")
        held.wait(timeout=BOUND)


def test_runs_opening_a_new_ledger_at_the_same_instant_get_one_lease(tmp_path: Path) -> None:
    """Four processes open a ledger that does not exist yet at the same instant (the migration and the lease both
    raced): exactly one holds it, the others are told it is busy — none fails otherwise, none pays beside it."""
    ctx = multiprocessing.get_context("spawn")
    start, held, results = ctx.Barrier(RUNS), ctx.Barrier(RUNS), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(str(tmp_path / "ledger.sqlite3"), start, held, results))
             for _ in range(RUNS)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=BOUND) for _ in procs)
    for p in procs:
        p.join(BOUND)
    assert outcomes == ["busy"] * (RUNS - 1) + ["held"], outcomes
