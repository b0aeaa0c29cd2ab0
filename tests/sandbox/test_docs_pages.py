"""The sandbox's API documentation pages load nothing from a third party: Swagger UI's and ReDoc's scripts are served
by the sandbox itself (fastapi-offline's copies), so /docs works where no CDN is reachable (an agency's network, a
vendor's CI) and tells no CDN who reads it. FastAPI's own pages loaded them from cdn.jsdelivr.net."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox.server import RunningSandbox
from tests.helpers import required

CHROMIUM = os.environ.get("USINE_CHROMIUM", "/usr/bin/chromium")


def loaded_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(r"""url:\s*'([^']+)'""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_only_the_sandboxs_own_files(sandbox_server: RunningSandbox, page: str) -> None:
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as http:
        r = http.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:200]
        urls = loaded_urls(r.text)
        assert urls and all(u.startswith("/") for u in urls), urls  # nothing from another host
        assert "fonts.googleapis" not in r.text and "cdn." not in r.text
        for url in urls:
            got = http.get(url)
            assert got.status_code == 200 and got.content, url


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_with_no_network_but_the_sandbox(sandbox_server: RunningSandbox) -> None:
    """In Chromium, every request to another host aborted: the page still shows the API's operations (the
    OpenAPI 3.1 document needs Swagger UI 5, which fastapi-offline ships)."""
    if not Path(CHROMIUM).exists():
        required("Chromium", "apt-get install chromium (.ci/run does), or set $USINE_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        required("Playwright", "pip install playwright (the test extra)")
    sandbox = urlsplit(sandbox_server.base_url).netloc
    elsewhere: list[str] = []

    def only_the_sandbox(route: Any) -> None:
        if urlsplit(route.request.url).netloc == sandbox:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    operations = len(httpx.get(f"{sandbox_server.base_url}/openapi.json", timeout=30).json()["paths"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("**/*", only_the_sandbox)
            page.goto(f"{sandbox_server.base_url}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            shown = page.locator(".opblock").count()
            assert page.locator(".errors-wrapper").count() == 0
        finally:
            browser.close()
    assert shown >= operations, (shown, operations)  # every path has one or more operations
    assert elsewhere == []
