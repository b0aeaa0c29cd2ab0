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


def test_format_characters_a_reader_does_not_see_are_not_read() -> None:
    """Zero-width space, word joiner, soft hyphen, zero-width joiner, a byte order mark, a bidirectional override:
    category Cf, invisible; a copy re-spelled with them reads as the copy (one document, one event)."""
    for hidden in ("\u200b", "\u2060", "\u00ad", "\u200d", "\ufeff", "\u202e"):
        assert as_read(f"Compte{hidden} rendu") == as_read("Compte rendu") == "Compte rendu", hidden
    assert as_read("e\u200b\u0301") == "\u00e9"  # removed before composing: what it leaves composes


@settings(derandomize=True, max_examples=300)
@given(st.text(), st.lists(st.sampled_from("\u200b\u2060\u00ad\u200d\ufeff\u202e\u2066"), max_size=5),
       st.data())
def test_invisible_characters_anywhere_read_as_nothing(text: str, hidden: list[str], data: st.DataObject) -> None:
    spelled = text
    for c in hidden:
        at = data.draw(st.integers(0, len(spelled)))
        spelled = spelled[:at] + c + spelled[at:]
    assert as_read(spelled) == as_read(text)
