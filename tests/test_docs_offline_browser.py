"""/docs and /redoc in a real headless Chromium with every request off 127.0.0.1 refused.

The assets come from the installed package (fastapi-offline), not a CDN: a machine without
internet still gets working API docs. Skips (with the reason) when Playwright or
/usr/bin/chromium is missing; fails under CI=true. `scripts/install-test-deps.sh` installs
Chromium.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from signup_sync.app import create_app
from signup_sync.settings import load_settings
from tests.conftest import IN_CI, TOKEN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} is missing (run scripts/install-test-deps.sh)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    reason = _missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"browser test cannot run: {reason}; CI requires it", pytrace=False)
        pytest.skip(f"browser test skipped: {reason}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn on a free loopback port; the docs need no data, so one SQLite file."""
    db = tmp_path_factory.mktemp("docs") / "docs.db"
    settings = load_settings(
        database_url=f"sqlite:///{db}",
        service_tokens=TOKEN,
        auto_migrate=True,
        sync_scheduler_enabled=False,
        webhook_worker_enabled=False,
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-docs", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test server did not start", pytrace=False)
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _operation_ids(base_url: str) -> list[str]:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    return [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in methods
    ]


async def _offline_page(browser: Any) -> tuple[Any, Any, list[str]]:
    """A page whose requests to anything but 127.0.0.1 are aborted (and noted)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    outside: list[str] = []

    async def only_loopback(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    await page.route("**/*", only_loopback)
    return context, page, outside


@pytest.mark.slow  # a real browser: in the full run (CI), not in -m 'not slow'
async def test_swagger_ui_works_offline(
    docs_server: str, browser: Any, artifacts_dir: Path
) -> None:
    expected = len(_operation_ids(docs_server))
    context, page, outside = await _offline_page(browser)
    try:
        await page.goto(f"{docs_server}/docs")
        await page.wait_for_selector(".opblock", timeout=60_000)
        assert await page.locator(".opblock").count() == expected
        # The operations a new user looks for first, listed with their paths.
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/funnel/event", "/sync/all", "/analytics/funnel-metrics"} <= {
            p.replace("\u200b", "") for p in paths
        }
        await page.screenshot(path=str(artifacts_dir / "docs-offline.png"))
    finally:
        await context.close()
    assert outside == []


@pytest.mark.slow  # a real browser: in the full run (CI), not in -m 'not slow'
async def test_redoc_works_offline(docs_server: str, browser: Any, artifacts_dir: Path) -> None:
    expected = set(_operation_ids(docs_server))
    context, page, outside = await _offline_page(browser)
    try:
        await page.goto(f"{docs_server}/redoc")
        operations = page.locator("[data-section-id*='operation/']")
        await operations.first.wait_for(timeout=60_000)
        sections = await operations.evaluate_all(
            "nodes => nodes.map(n => n.getAttribute('data-section-id'))"
        )
        assert {s.rsplit("operation/", 1)[1] for s in sections} == expected
        assert await page.locator("h2", has_text="Track one funnel event").count() >= 1
        await page.screenshot(path=str(artifacts_dir / "redoc-offline.png"))
    finally:
        await context.close()
    # ReDoc's own bundle always tries its attribution logo and hides it when that fails (as
    # here); nothing the page needs comes from outside.
    assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(docs_server: str, page: str) -> None:
    """Without a browser: every script, style and icon the page names is served here."""
    html = httpx.get(f"{docs_server}{page}", timeout=30).text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert any(u.endswith(".js") for u in urls), html
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url}"
        if not url.startswith("/openapi.json"):
            answer = httpx.get(f"{docs_server}{url}", timeout=30)
            assert answer.status_code == 200, url
            assert len(answer.content) > 1000, url
