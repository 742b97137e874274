"""The dashboard in a real headless Chromium, against a real uvicorn server on each backend.

Skips (with the reason) when Playwright or /usr/bin/chromium is missing; fails under CI=true.
`scripts/install-test-deps.sh` installs Chromium.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.app import create_app
from signup_sync.dashboard import render
from signup_sync.dashboard.render import percent
from signup_sync.db.models import FunnelSource
from signup_sync.db.session import create_session_factory
from signup_sync.db.types import utcnow
from signup_sync.settings import Settings
from tests import funnel_data
from tests.conftest import IN_CI, TOKEN

# A real browser per test: in the full run (CI), not in `-m "not slow"`.
pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} is missing (run scripts/install-test-deps.sh)"
    return None


@pytest.fixture
def browser_ready() -> None:
    reason = _missing()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"browser test cannot run: {reason}; CI requires it", pytrace=False)
    pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture
def live_server(settings: Settings, engine: AsyncEngine) -> Iterator[str]:
    """A real uvicorn serving the app on a free loopback port, in a background thread."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
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


@pytest.fixture
async def browser(browser_ready: None) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _add_source(engine: AsyncEngine) -> None:
    async with create_session_factory(engine)() as session:
        session.add(
            FunnelSource(
                source_type="zoom",
                name="Webinars",
                config={},
                last_sync_at=utcnow(),
                last_sync_status="partial",
            )
        )
        await session.commit()


async def _value(page: Any, selector: str) -> str:
    value = await page.get_attribute(selector, "data-value")
    assert value is not None, selector
    return str(value)


async def _check_against_api(
    page: Any, api: httpx.AsyncClient, group_by: str, model: str = "first_touch"
) -> dict[str, Any]:
    params = {"group_by": group_by, "model": model}
    metrics = (await api.get("/analytics/funnel-metrics", params=params)).json()
    assert int(await _value(page, "#total-leads")) == metrics["total_leads"]
    assert int(await _value(page, "#total-conversions")) == metrics["total_conversions"]
    assert await page.inner_text("#conversion-rate") == percent(metrics["conversion_rate"])
    for stage in metrics["stages"]:
        row = f'#stages tr[data-stage="{stage["stage"]}"]'
        assert int(await _value(page, f'{row} td[data-field="leads"]')) == stage["leads"]
        assert await page.inner_text(f'{row} td[data-field="rate_from_start"]') == percent(
            stage["rate_from_start"]
        )
    rows = await page.query_selector_all("#groups tbody tr")
    assert len(rows) == len(metrics["groups"])
    for row, group in zip(rows, metrics["groups"], strict=True):
        assert await row.get_attribute("data-group") == (group["group"] or "")
        leads = await row.query_selector('td[data-field="leads"]')
        conversions = await row.query_selector('td[data-field="conversions"]')
        rate = await row.query_selector('td[data-field="conversion_rate"]')
        assert leads and conversions and rate
        assert int(await leads.inner_text()) == group["leads"]
        assert int(await conversions.inner_text()) == group["conversions"]
        assert await rate.inner_text() == percent(group["conversion_rate"])
        credit = await row.query_selector('td[data-field="attributed_conversions"]')
        value = await row.query_selector('td[data-field="attributed_value"]')
        assert credit and value
        assert await credit.inner_text() == render.credit(group["attributed_conversions"])
        assert await value.inner_text() == render.money(Decimal(group["attributed_value"]))
    assert await page.get_attribute("#attribution", "data-model") == model
    return metrics


async def test_a_marketer_signs_in_and_reads_the_funnel(
    browser_ready: None,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    live_server: str,
    browser: Any,
    backend: str,
    artifacts_dir: Path,
) -> None:
    await funnel_data.load(client)
    await _add_source(engine)
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    async with httpx.AsyncClient(
        base_url=live_server, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as api:
        await page.goto(f"{live_server}/dashboard")
        assert "/dashboard/login" in page.url

        await page.fill("#token", "definitely-not-the-token")
        await page.click("#sign-in")
        assert "not valid" in await page.inner_text("#login-error")
        assert await context.cookies() == []

        await page.fill("#token", TOKEN)
        await page.click("#sign-in")
        await page.wait_for_selector("#stages")
        [session_cookie] = await context.cookies()
        assert session_cookie["httpOnly"] is True
        assert session_cookie["sameSite"] == "Strict"
        assert session_cookie["expires"] > time.time()
        await _check_against_api(page, api, "source_type")
        assert (
            await page.inner_text(
                '#source-status tr[data-source-type="zoom"] td[data-field="status"]'
            )
            == "partial"
        )

        await page.select_option("#group_by", "utm_campaign")
        await page.click("#apply")
        await page.wait_for_url("**group_by=utm_campaign**")
        assert await page.get_attribute("#groups", "data-group-by") == "utm_campaign"
        await _check_against_api(page, api, "utm_campaign")
        assert await page.locator("svg.chart").count() == 4

        # Another attribution model: the credits move, the counts of leads do not.
        first_params = {"group_by": "source_type", "model": "first_touch"}
        first = (await api.get("/analytics/funnel-metrics", params=first_params)).json()
        await page.select_option("#group_by", "source_type")
        await page.select_option("#model", "last_touch")
        await page.click("#apply")
        await page.wait_for_url("**model=last_touch**")
        last = await _check_against_api(page, api, "source_type", "last_touch")
        credited = {g["group"]: g["attributed_conversions"] for g in last["groups"]}
        assert credited != {g["group"]: g["attributed_conversions"] for g in first["groups"]}
        assert sum(credited.values()) == last["attribution"]["conversions"] == 1
        await page.select_option("#model", "linear")
        await page.select_option("#group_by", "utm_campaign")
        await page.click("#apply")
        await page.wait_for_url("**model=linear**")
        await _check_against_api(page, api, "utm_campaign", "linear")
        ttc = (await api.get("/analytics/time-to-convert")).json()["overall"]
        assert await page.get_attribute("#ttc-converted", "data-value") == str(
            ttc["converted_leads"]
        )
        assert await page.inner_text("#ttc-median") == render.number(ttc["median_days"])
        await page.screenshot(path=str(artifacts_dir / f"dashboard-{backend}.png"), full_page=True)

        # The people behind a number: follow the "spring" campaign row to its leads.
        await page.click('#groups tr[data-group="spring"] a')
        await page.wait_for_selector("#leads")
        shown = [
            await r.get_attribute("data-lead-id")
            for r in await page.query_selector_all("#leads tbody tr")
        ]
        listed = (await api.get("/leads", params={"utm_campaign": "spring"})).json()["items"]
        assert shown == [str(lead["id"]) for lead in listed]
        await page.click("#leads tbody tr:first-child a")
        await page.wait_for_selector("#timeline")
        assert await page.locator("#timeline tbody tr").count() >= 2

        await page.click("#logout")
        await page.wait_for_url("**/dashboard/login")
        await page.goto(f"{live_server}/dashboard")
        assert "/dashboard/login" in page.url
    await context.close()


async def _overflow(page: Any, selector: str) -> float:
    """How far the element's box reaches past the viewport's right edge (0 when it fits)."""
    return float(
        await page.evaluate(
            "s => document.querySelector(s).getBoundingClientRect().right - window.innerWidth",
            selector,
        )
    )


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_people_list_sorts_pages_both_ways_and_fits_the_screen(
    browser_ready: None,
    client: httpx.AsyncClient,
    live_server: str,
    browser: Any,
    backend: str,
    artifacts_dir: Path,
    width: int,
) -> None:
    """Issue 18, points 15 and 17: total, sort by any column, previous/next, phone width."""
    people = [
        {
            "email": f"person{n:03d}@example.com",
            "first_name": f"P{n:03d}",
            "source_type": "manual",
            "event_type": "lead_captured",
            "utm_campaign": f"camp-{n % 3}",
            "occurred_at": f"2026-05-{1 + n % 28:02d}T10:00:00Z",
        }
        for n in range(120)
    ]
    r = await client.post("/funnel/events/batch", json={"events": people})
    assert r.status_code == 200, r.text
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(f"{live_server}/dashboard/login")
    await page.fill("#token", TOKEN)
    await page.click("#sign-in")
    await page.wait_for_selector("#stages")
    await page.screenshot(
        path=str(artifacts_dir / f"dashboard-{width}-{backend}.png"), full_page=True
    )
    for section in ("#funnel", "#groups-section", "#weekly", "#time-to-convert"):
        assert await _overflow(page, section) <= 1, (section, width)

    await page.goto(f"{live_server}/dashboard/leads")
    await page.wait_for_selector("#leads")
    assert await page.get_attribute("#people-total", "data-value") == "120"
    assert await _overflow(page, "main section") <= 1
    await page.screenshot(path=str(artifacts_dir / f"people-{width}-{backend}.png"), full_page=True)

    # Sort by email (ascending, then descending by clicking again).
    await page.click('th a[data-sort="email"]')
    await page.wait_for_url("**sort=email**")
    first = await page.inner_text("#leads tbody tr:first-child td:first-child")
    assert first == "person000@example.com"
    await page.click('th a[data-sort="email"]')
    await page.wait_for_url("**sort=-email**")
    assert await page.inner_text("#leads tbody tr:first-child td:first-child") == (
        "person119@example.com"
    )
    # Next, next, then previous: back on the second page, the same people.
    await page.click("#next-page")
    await page.wait_for_selector("#prev-page")
    second = await page.inner_text("#leads tbody tr:first-child td:first-child")
    assert second == "person069@example.com"
    await page.click("#next-page")
    await page.wait_for_selector("#prev-page")
    assert await page.locator("#next-page").count() == 0
    assert await page.locator("#leads tbody tr").count() == 20
    await page.click("#prev-page")
    await page.wait_for_selector("#next-page")
    assert await page.inner_text("#leads tbody tr:first-child td:first-child") == second
    await page.click("#prev-page")
    await page.wait_for_selector("#next-page")
    assert await page.locator("#prev-page").count() == 0
    await context.close()
