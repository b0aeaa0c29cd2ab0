"""Events join their verdicts on a 64-bit key of the combination judgement reads (``engine.COMBO_HASH``).

The key is not trusted (a vendor chooses its software's version and ids): combinations that share one must still
get their own verdicts. Each case forces keys to clash (a constant, a key of the site's size alone) and runs the
two runs of ``tests.payments.mixed`` (every refusal reason, payments, after-payment, repeats) in one batch or in
batches of one segment: the outputs are those of the runs with the real key, byte for byte, and the runs did meet
the clash (within a batch, or between a batch and those before it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformity.payments import engine
from tests.payments.mixed import outputs, run, workspace
from tests.payments.workspace import ledger_state


def _runs(ws: Any, first: Path, second: Path, root: Path, every: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ledger = root / "ledger.sqlite3"
    results = [outputs(root / f"out{n}", run(ws, files, ledger, root / f"out{n}", commit_every=every))
               for n, files in enumerate(((first,), (second,)), start=1)]
    return results, ledger_state(ledger)


@pytest.fixture()
def clashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """``keys_clash`` after each batch of the runs."""
    seen: list[bool] = []
    judged = engine.Engine._verdict_table

    def spy(self: engine.Engine) -> None:
        judged(self)
        seen.append(self.keys_clash)

    monkeypatch.setattr(engine.Engine, "_verdict_table", spy)
    yield seen


@pytest.mark.parametrize("every", [1, 200_000], ids=["segment-batches", "one-batch"])
@pytest.mark.parametrize("key", ["0::UBIGINT", "hash(site_size)"], ids=["one-key", "size-key"])
def test_combinations_sharing_a_key_get_the_verdicts_of_distinct_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clashes: list[bool], key: str, every: int) -> None:
    ws, first, second = workspace(tmp_path)
    reference, reference_ledger = _runs(ws, first, second, tmp_path / "keyed", every)
    assert clashes and not any(clashes), "the real key clashed on the test's few combinations"
    clashes.clear()
    monkeypatch.setattr(engine, "COMBO_HASH", key)
    got, got_ledger = _runs(ws, first, second, tmp_path / "clashing", every)
    assert any(clashes), "the forced key never clashed"
    # batches of a segment: the first (one combination) cannot clash, a later one's with those judged before does;
    # one batch: two combinations of the batch share the key
    assert clashes[0] is (every > 1)
    assert got_ledger == reference_ledger
    for n, (mine, theirs) in enumerate(zip(got, reference, strict=True), start=1):
        for part in theirs:
            assert mine[part] == theirs[part], f"run {n}: {part} differs"
    # what the runs compare is worth comparing: refusals with details of judgement, payments
    assert reference[0]["stats"]["paid"] == 2 and reference[1]["stats"]["paid"] == 1
    for reason in (b"label-revoked", b"outside-window", b"no-label", b"not-proof-of-use"):
        assert reason in reference[0]["refusals.csv"]
