"""report.html in Chromium: its CSP lets its own style apply (and nothing else), and axe-core finds no serious or
critical accessibility violation, on the page as it opens and with every section unfolded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformity.reporting.html import report_html
from tests.helpers import required
from tests.reporting.test_html import TRACES, report

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("USINE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        required("Chromium", "apt-get install chromium (.ci/run does), or set $USINE_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        required("Playwright", "pip install playwright (the test extra)")
    path = tmp_path / "report.html"
    # an exchange long enough that its excerpt scrolls (as the real ones do)
    long = {s: {"exchanges": [{**e, "response": {"status": 200, "headers": {f"x-h{i}": "v" * 60 for i in range(80)}}}
                              for e in t["exchanges"]]} for s, t in TRACES.items()}
    path.write_text(report_html(report(n_pass=40), long), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        tab = browser.new_page()
        tab.csp_violations = []
        tab.on("console", lambda m: tab.csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        tab.goto(path.as_uri())
        yield tab
        browser.close()


def _violations(tab: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(tab)
    return [f"{v['id']} ({v['impact']}): {v['help']} — e.g. {v['nodes'][0]['html'][:160]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_the_report_is_styled_under_its_own_csp_and_accessible(page: Any) -> None:
    header = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert header == "rgb(179, 38, 30)", "the page's style applies under its CSP"
    assert not page.csp_violations, page.csp_violations
    assert not page.evaluate("window.__xss || false")
    assert not _violations(page)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert not _violations(page)
