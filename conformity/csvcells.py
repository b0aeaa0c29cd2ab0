"""Every CSV usine writes goes through :class:`Writer`: the csv module's quoting, and no cell a spreadsheet runs.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice or Google Sheets (CWE-1236, "CSV injection"): a vendor's site name ``=HYPERLINK(...)`` in
``payment-orders.csv`` would be a link in the agency's spreadsheet. Such a text cell is written with a
single quote in front (the OWASP rule): ``'=HYPERLINK(...)``, which spreadsheets show as text. So that a program
gets every text back exactly, a text that is single quotes then such a character (``'=x``) gets one more
(``''=x``): a reader drops one leading ``'`` from a cell that, without its leading quotes, starts with one of
those six characters (:func:`original`).

Numbers are not text: an ``int`` or ``float`` is written as it is, and so is a :class:`Figure`, a number
usine computed itself and formats as text (an amount ``-12.50``), which must stay a number for the spreadsheet.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

#: what makes a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


class Figure(str):
    """A number usine formats itself (``"-12.50"``), written as it is: only a decimal number can be one."""

    __slots__ = ()

    def __new__(cls, value: str) -> Figure:
        if not _NUMBER.match(value):
            raise ValueError(f"{value!r} is not a decimal number")
        return super().__new__(cls, value)


def cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs: a text starting as a formula gets a ``'`` in front."""
    if isinstance(value, str) and not isinstance(value, Figure) and value.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def original(text: str) -> str:
    """The text of a cell :func:`cell` wrote (for readers of usine's CSV files)."""
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS) else text


class Writer:
    """``csv.writer`` whose rows go through :func:`cell`. A row with a carriage return in a text is written with every
    cell quoted: with ``lineterminator="\\n"`` the csv module leaves a lone ``\\r`` unquoted, and a reader takes it for
    the end of the row."""

    def __init__(self, fh: IO[str], **options: Any):
        self._writer = csv.writer(fh, **options)
        self._quoted = csv.writer(fh, **{**options, "quoting": csv.QUOTE_ALL})

    def writerow(self, row: Iterable[Any]) -> None:
        cells = [cell(v) for v in row]
        if any(isinstance(v, str) and "\r" in v for v in cells):
            self._quoted.writerow(cells)
        else:
            self._writer.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


#: a cell of CSV text that may start with a formula character: at a line start (after a line feed, or a lone carriage
#: return, which the csv module's reader also takes for a row's end) or after a comma, quoted or not (a false alarm,
#: e.g. inside a quoted cell, only costs a rewrite)
_MAY_START_A_FORMULA = re.compile(rb'[\r\n,]"?\'*[-=+@\t\r]')


def may_hold_formulas(path: Any, chunk: int = 1 << 20) -> bool:
    """Whether the CSV file at ``path`` (written by another tool) may have a cell :func:`cell` would change: a scan of
    its bytes, much faster than parsing it."""
    with open(path, "rb") as fh:
        tail = b"\n"  # the file's start is a line start
        while data := fh.read(chunk):
            data = tail + data
            if _MAY_START_A_FORMULA.search(data):
                return True
            quotes = len(data) - len(data.rstrip(b"'\""))  # a match may go on in the next chunk: keep its start
            tail = data[-quotes - 1:]
    return False


def copy_rows(src: IO[str], writer: Writer) -> None:
    """The rows of CSV text ``src`` (opened with ``newline=""``) through ``writer``."""
    writer.writerows(csv.reader(src))
