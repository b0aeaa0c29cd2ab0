"""End to end in a real browser (Debian's Chromium driven by Playwright) against the served agency.

Vendor uploads through the web form → reviewer accepts → a second reviewer accepts (four-eyes) →
decider labels → the public registry shows the label → revocation shows on the label's page and in the
revocation list. Screenshots of each step are saved under the test's tmp folder; every page passes an
automated accessibility check (axe-core) with no serious or critical violation.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformity.agency.registry import Registry
from conformity.agency.service import ServiceConfig, accounts
from conformity.catalog import Catalog
from conformity.db.connection import Database
from conformity.signing import KeyRing
from tests.agency.helpers import Runs
from tests.agency.service_client import Served
from tests.helpers import required

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("USINE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        required("Chromium", "apt-get install chromium (.ci/run does), or set $USINE_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        required("Playwright", "pip install playwright (the test extra)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def agency(runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> Iterator[Served]:
    config = ServiceConfig(database=Database(tmp_path / "registry.sqlite3"), catalog=catalog,
                           trust=KeyRing.from_paths([runs.trust]), key_path=home / "agency" / "agency-key.pem",
                           data=tmp_path / "service", secure_cookies=False)
    with Registry(config.database) as reg:
        for login, role in (("alice", "reviewer"), ("bob", "reviewer"), ("dora", "decider")):
            accounts.create_account(reg.db, login, login.capitalize(), role, password=PASSWORD)
        accounts.create_account(reg.db, "ref", "Reference vendor", "vendor", vendor_id="usine-reference",
                                password=PASSWORD)
    s = Served(config)
    yield s
    s.close()


class Steps:
    """A person's browser tab; each step saves a screenshot, checks accessibility."""

    def __init__(self, browser: Any, url: str, shots: Path, who: str):
        self.page = browser.new_context(base_url=url).new_page()
        self.page.set_default_timeout(90_000)  # a whole agency flow beside the suite's other work: slow, not stuck
        self.url, self.shots, self.who = url, shots, who
        self.n = 0

    def shot(self, name: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.shots / f"{self.who}-{self.n:02d}-{name}.png"), full_page=True)

    def accessible(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        bad = [f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s), e.g. {v['nodes'][0]['html'][:120]}"
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"{self.page.url}: " + "; ".join(bad)

    def sign_in(self, login: str) -> None:
        self.page.goto("/login")
        self.accessible()
        self.page.get_by_label("Login").fill(login)
        self.page.get_by_label("Password").fill(PASSWORD)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()


def test_the_whole_flow_in_chromium(browser: Any, agency: Served, runs: Runs, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    vendor = Steps(browser, agency.url, shots, "vendor")
    vendor.sign_in("ref")
    assert vendor.page.url.endswith("/vendor")
    vendor.accessible()
    vendor.page.get_by_label(re.compile("Evidence bundle")).set_input_files(str(runs.reference))
    with vendor.page.expect_navigation():
        vendor.page.get_by_role("button", name="Upload").click()
    deadline = time.monotonic() + 90
    while vendor.page.locator("#status").inner_text() in ("received", "verifying") and time.monotonic() < deadline:
        time.sleep(0.5)
        vendor.page.reload()
    assert vendor.page.locator("#status").inner_text() == "awaiting-review"
    vendor.accessible()
    vendor.shot("awaiting-review")
    upload_url = vendor.page.url

    for login in ("alice", "bob"):
        reviewer = Steps(browser, agency.url, shots, login)
        reviewer.sign_in(login)
        reviewer.accessible()
        reviewer.page.locator("table a[href^='/staff/submissions/']").first.click()
        reviewer.page.wait_for_load_state()
        reviewer.accessible()
        reviewer.shot("submission")
        # evidence loads lazily: its box is reserved, or ticking a box below an image clicks where it was
        heights = reviewer.page.eval_on_selector_all(".evidence", "els => els.map(e => e.getBoundingClientRect().height)")
        assert heights and min(heights) >= 400, heights
        picks = reviewer.page.locator("input[form=bulk-review]")
        for i in range(picks.count()):
            req = picks.nth(i).get_attribute("value")
            if login == "alice" or reviewer.page.locator(f"#req-{req} .four-eyes").count():
                picks.nth(i).check()  # bob confirms what awaits a second reviewer (a SHOULD needs one review)
        reviewer.page.get_by_label("Accept all ticked").check()
        reviewer.page.get_by_label("Reason for the ticked requirements").fill(f"{login}: each file shows what is asked")
        with reviewer.page.expect_navigation():
            reviewer.page.get_by_role("button", name="Record review of the ticked requirements").click()
        assert reviewer.page.locator(".done").inner_text().startswith("accepted"), reviewer.page.content()[:500]
        if login == "alice":
            assert reviewer.page.locator(".four-eyes").count() > 0  # every MUST awaits a second reviewer
        reviewer.shot("reviewed")

    decider = Steps(browser, agency.url, shots, "dora")
    decider.sign_in("dora")
    decider.page.locator("table a[href^='/staff/submissions/']").first.click()
    decider.page.wait_for_load_state()
    assert "labelled" in decider.page.locator("#preview").inner_text()
    with decider.page.expect_navigation():
        decider.page.get_by_role("button", name="Decide").click()
    assert decider.page.locator("#state").inner_text() == "labelled"
    decider.accessible()
    decider.shot("labelled")
    label_id = re.search(r"lbl_[A-Za-z0-9]+", decider.page.locator(".done").inner_text()).group(0)  # type: ignore[union-attr]

    public = Steps(browser, agency.url, shots, "public")
    public.page.goto("/registry")
    public.accessible()
    public.page.get_by_label("Vendor").fill("usine-reference")
    with public.page.expect_navigation():
        public.page.get_by_role("button", name="Filter").click()
    assert label_id in public.page.content()
    public.shot("registry")
    with public.page.expect_navigation():
        public.page.get_by_role("link", name=label_id).click()
    assert "valid" in public.page.locator("h1").inner_text()
    public.accessible()
    public.shot("label")

    decider.page.get_by_label(f"Reason for revoking {label_id}").fill("field report: TLS checks disabled")
    with decider.page.expect_navigation():
        decider.page.get_by_role("button", name="Revoke").click()
    assert "revoked" in decider.page.locator(".done").inner_text()
    public.page.reload()
    assert "revoked" in public.page.locator("h1").inner_text() and "TLS checks disabled" in public.page.content()
    public.shot("label-revoked")
    public.page.goto("/revocations")
    assert label_id in public.page.content() and "next update" in public.page.content()
    public.accessible()
    public.shot("revocations")
    for path in ("/", "/waves", "/staff/audit", "/password"):
        decider.page.goto(path)
        decider.accessible()
    vendor.page.goto(upload_url)
    assert vendor.page.locator("#status").inner_text() == "revoked"
    assert len(list(shots.glob("*.png"))) >= 9
