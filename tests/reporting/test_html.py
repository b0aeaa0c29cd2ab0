"""report.html: self-contained and CSP-safe, every vendor string escaped, requirement → check → verdict → evidence,
summary first, collapsible on a large run, accessible."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from lxml import html as lxml_html

from conformity.harness.report import RequirementRow, summarise
from conformity.reporting.html import report_html

XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
HEADER_XSS = "</pre></details><svg onload=alert(3)>"

TRACES: dict[str, dict[str, Any]] = {"pracauth.login_faults": {"exchanges": [
    {"seq": 7, "service": "idp", "request": {"method": "GET", "path": "/userinfo",
                                             "headers": {"user-agent": HEADER_XSS, "x-note": XSS}},
     "response": {"status": 200}},
]}}


def _row(rid: str, verdict: str, *, check: str = "oidc.alg_none_refused", findings: tuple[dict[str, Any], ...] = (),
         method: str = "automated", evidence: str | None = None) -> RequirementRow:
    return RequirementRow(rid, f"PRACAUTH@1.0#{rid}", f"title of {rid}", "MUST", "security", method,
                          (check,) if method == "automated" else (), verdict, findings, evidence)


def report(n_pass: int = 2) -> dict[str, Any]:
    failing = {"message": f"the driver answered {XSS}", "exchange": 7, "scenario": "pracauth.login_faults",
               "where": "request.headers.x-note", "expected": "token discarded", "got": {"answer": XSS}}
    rows = [_row("PRACAUTH-007", "fail", findings=(failing,)),
            _row("PRACAUTH-008", "error", check="oidc.nonce", findings=({"message": f"driver said {XSS}"},)),
            _row("PRACAUTH-016", "evidence-required", method="document", evidence="the user guide")]
    rows += [_row(f"PRACAUTH-{100 + i:03d}", "pass", check="oidc.ok") for i in range(n_pass)]
    checks = [{"id": "oidc.alg_none_refused", "scenario": "pracauth.login_faults", "status": "fail",
               "findings": [failing], "duration_ms": 3},
              {"id": "oidc.nonce", "scenario": "pracauth.login_faults", "status": "error",
               "findings": [{"message": f"driver said {XSS}"}], "duration_ms": 1},
              {"id": "oidc.ok", "scenario": "pracauth.login_nominal", "status": "pass", "findings": [], "duration_ms": 1}]
    return {"vendor": {"software": f"RefApp {XSS}", "version": "1.0"}, "wave": "2027-W2", "category": "HOSPITAL",
            "seed": 5, "seed_source": "sandbox", "attempt": 1, "run_id": "run_x", "harness": {"version": "0"},
            "duration_s": 1.0,
            "requirements": [r.to_json() for r in rows], "summary": summarise(rows), "checks": checks,
            "evidence": {"PRACAUTH-016": [{"file": f"guide{XSS}.pdf", "media_type": "application/pdf", "bytes": 3,
                                           "sha256": "ab" * 32}]},
            "problems": [{"scenario": "pracauth.login_faults", "step": "login", "action": "practitioner.login",
                          "kind": "driver", "message": f"the driver wrote {XSS}"}],
            "scenarios": [{"id": "pracauth.login_faults", "session_id": "s1", "duration_s": 0.5,
                           "driver_failures": [{"kind": "garbage", "message": XSS}], "error": None}]}


def test_vendor_text_is_escaped_everywhere() -> None:
    """A driver's answer, a header the software sent, an evidence file name, the software's name: text, never
    markup — no script, no event handler in the page, and the text is shown as sent."""
    page = report_html(report(), TRACES)
    doc = lxml_html.fromstring(page)
    assert not doc.xpath("//script | //svg | //img | //iframe | //object")
    assert not [a for el in doc.iter() if isinstance(el.tag, str) for a in el.attrib if a.lower().startswith("on")]
    text = doc.text_content()
    assert XSS in text and "alert(3)" in text


def test_the_page_is_self_contained_and_its_csp_allows_only_its_own_style() -> None:
    page = report_html(report(), TRACES)
    doc = lxml_html.fromstring(page)
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//|@import|url\(", page, re.I)
    csp = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
    assert csp and "default-src 'none'" in csp[0] and "script-src" not in csp[0].replace("script-src 'none'", "")
    (style,) = doc.xpath("//style")
    digest = base64.b64encode(hashlib.sha256(style.text.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp[0]
    assert not doc.xpath("//*[@style]"), "an inline style attribute is blocked by the CSP"


def test_each_requirement_links_its_checks_verdict_and_the_trace_excerpt_that_decided_it() -> None:
    doc = lxml_html.fromstring(report_html(report(), TRACES))
    failed = doc.get_element_by_id("PRACAUTH-007")
    text = " ".join(failed.text_content().split())
    assert "oidc.alg_none_refused" in text and "fail" in text
    assert 'expected "token discarded", got {"answer":' in text and "request.headers.x-note" in text
    assert "exchange 7" in text and "/userinfo" in text  # the excerpt of exchange 7 of the scenario
    passed = " ".join(doc.get_element_by_id("PRACAUTH-100").text_content().split())
    assert "oidc.ok" in passed and "pass" in passed


def test_a_large_run_shows_the_summary_first_and_folds_the_passes() -> None:
    """Hundreds of requirements: a summary with links to what did not pass comes first; passed requirements are
    folded (``<details>`` closed), those that did not pass open."""
    doc = lxml_html.fromstring(report_html(report(n_pass=400), TRACES))
    main = doc.find(".//main")
    sections = [el for el in main if el.tag in ("section", "details")]
    assert sections[0].get("id") == "problems" and sections[1].get("id") == "summary"
    links = {a.get("href") for a in sections[1].iter("a")}
    assert {"#PRACAUTH-007", "#PRACAUTH-008", "#PRACAUTH-016"} <= links
    passed = doc.get_element_by_id("PRACAUTH-100").xpath("ancestor::details")
    assert passed and passed[0].get("open") is None
    failed = doc.get_element_by_id("PRACAUTH-007").xpath("ancestor::details")
    assert not failed or failed[0].get("open") is not None


def test_headings_do_not_skip_levels_and_tables_have_headers() -> None:
    doc = lxml_html.fromstring(report_html(report(), TRACES))
    levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    for table in doc.iter("table"):
        assert table.find("caption") is not None and table.xpath(".//th[@scope]"), lxml_html.tostring(table)
