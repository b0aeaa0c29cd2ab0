"""csvcells.may_hold_formulas never misses a cell that csvcells.cell would change, however the CSV is cut in chunks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.csvcells import cell, may_hold_formulas

CELL = st.text(alphabet="ab'\"=,\n\r\t-+@ ", max_size=6)


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_a_row_ended_by_a_lone_carriage_return_is_scanned(tmp_path: Path, chunk: int) -> None:
    """Before, only a line feed or a comma counted as a cell's start: ``a\\r=x`` (unquoted, as a writer with another
    line terminator leaves it) is two rows to the csv module, the second the formula ``=x``, and was missed."""
    text = "a\r=HYPERLINK(1)\n"
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["a"], ["=HYPERLINK(1)"]]
    path = tmp_path / "rows.csv"
    path.write_bytes(text.encode())
    assert may_hold_formulas(path, chunk=chunk)


@settings(derandomize=True, max_examples=1500, deadline=None)
@given(st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=1, max_size=5), st.integers(1, 7),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_no_cell_to_neutralise_is_missed(tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], chunk: int,
                                         terminator: str) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator=terminator).writerows(rows)
    text = buf.getvalue()
    changed = any(cell(v) != v for row in csv.reader(io.StringIO(text, newline="")) for v in row)
    path = tmp_path_factory.mktemp("scan") / "rows.csv"
    path.write_bytes(text.encode())
    assert may_hold_formulas(path, chunk=chunk) or not changed, (text, chunk)
