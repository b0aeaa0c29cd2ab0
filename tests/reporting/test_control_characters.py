"""A driver's JSON-RPC error message is the vendor's text, in findings and run problems: escape sequences, NUL, a
carriage return, a lone surrogate, a bidi override. Every output renders it visibly (``\\x1b``), none breaks:
junit.xml raised ValueError (not XML-compatible) and the run ended with a traceback and no output at all; the
terminal and the CI log received the raw escape sequences (colours, cursor moves, a title change)."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html
from rich.console import Console

from conformity import plugins
from conformity.catalog import load_catalog
from conformity.harness.plan import make_plan
from conformity.reporting.html import report_html
from conformity.reporting.junit import junit_xml
from conformity.reporting.terminal import TerminalReporter, problem_lines
from conformity.reporting.text import visible
from tests.reporting.test_html import TRACES, report

plugins.register_all()

NASTY = "boom \x1b[31mred\x1b[0m \x00 \r\x1b]0;title\x07 \ud800 \u202eevil \x9b"


def nasty_report() -> dict:  # type: ignore[type-arg]
    r = report()
    r["requirements"][0]["findings"][0]["message"] = NASTY
    r["requirements"][1]["findings"][0]["message"] = NASTY
    r["checks"][0]["findings"][0]["message"] = NASTY
    r["problems"][0]["message"] = NASTY
    r["scenarios"][0]["driver_failures"][0]["message"] = NASTY
    r["vendor"]["software"] = NASTY
    return r


def test_junit_renders_control_characters_visibly() -> None:
    doc = etree.fromstring(junit_xml(nasty_report()))
    text = etree.tostring(doc, encoding="unicode")
    assert "boom \\x1b[31mred\\x1b[0m \\x00 \\x0d\\x1b]0;title\\x07 \\ud800 \\u202eevil \\x9b" in text


def test_html_renders_control_characters_visibly() -> None:
    page = report_html(nasty_report(), TRACES)
    page.encode("utf-8")  # a lone surrogate made the page unwritable
    assert not any(c in page for c in "\x1b\x00\r\x07\u202e\x9b")
    assert "boom \\x1b[31mred" in lxml_html.fromstring(page).text_content()


def test_the_terminal_prints_no_escape_sequence_of_the_vendor() -> None:
    r = nasty_report()
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    TerminalReporter(make_plan(load_catalog(), "2027-W2", "GP", ("PRACAUTH",)), console).summary(r)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert not any(c in out for c in "\x1b\x00\r\x07\u202e\x9b\ud800"), repr(out)
    assert "\\x1b[31mred" in out
    assert all("\x1b" not in line for line in problem_lines(r))


@settings(derandomize=True, max_examples=200)
@given(st.text())
def test_visible_text_is_xml_compatible_and_keeps_printable_text(text: str) -> None:
    shown = visible(text)
    etree.fromstring(f"<a b='{shown.replace('&', '&amp;').replace('<', '&lt;').replace(chr(39), '&apos;')}'/>"
                     .encode())
    if all(c.isprintable() or c in "\n\t" for c in text) and "\\" not in text:
        assert shown == text
