"""The specification page as a vendor opens it: ``usine wave show --format html`` loaded by a real browser (Debian's
``chromium``, headless), whose DOM has every driver action with its schemas and example, and the conventions.

Skips without chromium; with ``CI=true`` it must run (``.ci/run`` installs Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import html as lxml_html

from conformity.catalog import load_catalog


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and chromium is missing (.ci/run installs Debian's chromium)", pytrace=False)
        pytest.skip("chromium (Debian's chromium package) is not installed")
    return found


def rendered(page: Path, profile: Path) -> lxml_html.HtmlElement:
    """The DOM of ``page`` once the browser has loaded it."""
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-2000:]
    return lxml_html.fromstring(done.stdout)


def test_the_specification_page_in_a_browser_shows_each_action_with_its_schemas(usine, repo_root: Path,
                                                                                  tmp_path: Path) -> None:
    out = tmp_path / "spec.html"
    assert usine("wave", "show", "2026-W1", "-c", "GP", "--format", "html", "-o", out).exit_code == 0
    dom = rendered(out, tmp_path / "profile")
    spec = load_catalog(repo_root).specification("2026-W1", "GP")
    for a in spec.actions:
        found = dom.xpath(f'//*[@id="action-{a.name}"]')
        assert len(found) == 1, a.name
        section = found[0]
        text = " ".join(section.text_content().split())
        assert "Input schema" in text and "Output schema" in text, a.name
        blocks = ["".join(p.text_content().split()) for p in section.iter("pre")]
        for schema in (a.input, a.output):
            assert "".join(json.dumps(schema, indent=2, ensure_ascii=False).split()) in blocks, a.name
    page = " ".join(dom.text_content().split())
    assert "Who is logged in" in page and "initialize" in page
    for a in spec.requirements:
        assert dom.xpath(f'//*[@id="{a.id}"]'), a.id
