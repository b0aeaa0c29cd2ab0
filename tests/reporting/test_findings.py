"""A finding reads the same in every output: its message, where in the trace, what was expected and what was seen —
and only what it holds (a finding with no expectation did not say ``expected null``)."""

from __future__ import annotations

from typing import Any

from lxml import etree
from lxml import html as lxml_html

from conformity.reporting.html import report_html
from conformity.reporting.junit import junit_xml
from conformity.reporting.text import finding_text
from tests.reporting.test_html import TRACES, report

SEEN_ONLY = {"message": "the driver answered outside the protocol", "scenario": "pracauth.login_faults",
             "exchange": 7, "where": "driver problem", "got": {"kind": "rpc-error"}}
BOTH = {"message": "the software opened a session", "exchange": 19, "where": "output.authenticated",
        "expected": False, "got": True}


def test_finding_text_says_where_and_only_what_it_holds() -> None:
    assert finding_text(SEEN_ONLY) == ('the driver answered outside the protocol [scenario pracauth.login_faults, '
                                       'exchange 7, at driver problem] — got {"kind": "rpc-error"}')
    assert finding_text(BOTH) == ("the software opened a session [exchange 19, at output.authenticated] — "
                                  "expected false, got true")
    assert finding_text({"message": "m", "exchange": 4}) == "m [exchange 4]"


def _with(finding: dict[str, Any]) -> dict[str, Any]:
    r = report()
    r["requirements"][0]["findings"] = [finding]
    r["checks"][0]["findings"] = [finding]
    return r


def test_junit_and_html_say_where_and_only_what_the_finding_holds() -> None:
    for finding in (SEEN_ONLY, BOTH):
        doc = etree.fromstring(junit_xml(_with(finding)))
        failure = next(c for c in doc.iter("testcase") if c.get("name").startswith("PRACAUTH-007")).find("failure")
        assert finding_text(finding) in failure.text
        page = lxml_html.fromstring(report_html(_with(finding), TRACES))
        text = " ".join(page.get_element_by_id("PRACAUTH-007").text_content().split())
        assert ("expected" in text) == ("expected" in finding), text
        assert f"at {finding['where']}" in text
