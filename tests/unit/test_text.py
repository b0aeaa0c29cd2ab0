"""Text as it reads (:func:`conformity.text.as_read`), the one normal form the infrastructure compares texts in."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.text import as_read


def test_composition_white_space_and_no_break_spaces_read_alike() -> None:
    assert as_read("  Ré\u0301sumé \t de\u00a0la\n\nvisite ") == as_read("R\u00e9\u0301sum\u00e9 de la visite")
    assert as_read("e\u0301") == "\u00e9" and as_read(" \t\n") == ""


@settings(derandomize=True, max_examples=300)
@given(st.text())
def test_reading_twice_reads_the_same_and_leaves_no_run_of_white_space(text: str) -> None:
    once = as_read(text)
    assert as_read(once) == once
    assert once == once.strip() and "  " not in once
    assert unicodedata.is_normalized("NFC", once)
