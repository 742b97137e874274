"""A source API that hangs, loops, floods or lies: the sync ends with the reason.

The Eventbrite fake serves real HTTP on 127.0.0.1; faults land on page 1 (the run writes
nothing: ``failed``) or page 2 (page 1 stays, committed whole: ``partial``). Either way
the broken page writes nothing, so the database holds exactly what a 50-attendee source
(one clean page) would leave.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent
from signup_sync.db.session import create_session_factory
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from signup_sync.sync.schemas import SourceSyncResult
from tests.conftest import TOKEN as SERVICE_TOKEN
from tests.conftest import truncate_all
from tests.fakes.eventbrite import TOKEN, FakeEventbrite, Switch
from tests.faults.support import (
    TOKEN_ENV,
    add_eventbrite_source,
    count,
    eventbrite_config,
    silent_server,
    snapshot,
    sync_logs,
)
from tests.helpers import LOCAL_SETTINGS
from tests.server import run_server

Factory = async_sessionmaker[AsyncSession]
ATTEMPTS = 3
# Short enough to keep the suite quick, long enough for a loaded CI machine's loopback.
TIMEOUT = 0.5
POLICY = RetryPolicy(attempts=ATTEMPTS, wait_scale=0, timeout_seconds=TIMEOUT)


@pytest.fixture
def factory(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Factory:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return create_session_factory(engine)


async def sync(factory: Factory, base_url: str) -> SourceSyncResult:
    source_id = await add_eventbrite_source(factory, base_url)
    return await run_sync(factory, source_id, retry=POLICY, settings=LOCAL_SETTINGS)


async def one_clean_page(
    eb_server: tuple[Switch, str], factory: Factory, engine: AsyncEngine
) -> dict[str, Any]:
    """What page 1 alone leaves: the expectation for a run that broke on page 2."""
    switch, base_url = eb_server
    switch.use(FakeEventbrite(count=50))
    assert (await sync(factory, base_url)).status == "success"
    expected = await snapshot(engine)
    await truncate_all(engine)
    return expected


HOSTILE = {
    "hang": "ReadTimeout",
    "redirect_loop": "too many redirects",
    "huge": "response larger than 8388608 bytes",
    "bad_utf8": "malformed page (not valid UTF-8 at byte",
    "bad_json": "malformed page (not valid JSON at byte",
    "malformed": "malformed page (no attendees/pagination)",
}


@pytest.mark.slow  # see README, Tests
@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("page", [1, 2])
async def test_a_hostile_page_ends_the_sync_with_the_reason_and_writes_nothing_of_it(
    eb_server: tuple[Switch, str], factory: Factory, engine: AsyncEngine, kind: str, page: int
) -> None:
    switch, base_url = eb_server
    expected = await one_clean_page(eb_server, factory, engine) if page == 2 else None
    fake = switch.use(FakeEventbrite(count=120))
    # A redirect loop redirects for ever (each hop takes one); the rest fail every attempt.
    fake.inject(kind, page=page, times=100 if kind == "redirect_loop" else ATTEMPTS)

    result = await sync(factory, base_url)

    assert result.status == ("failed" if page == 1 else "partial")
    reason = result.error_messages[-1]
    assert f"eventbrite organization:{fake.organization_id} page {page}" in reason
    assert HOSTILE[kind] in reason, reason
    assert result.errors_count == 1
    [log] = [entry for entry in await sync_logs(engine) if entry.id == result.sync_log_id]
    assert log.status == result.status and log.error_messages[-1] == reason
    assert log.completed_at is not None
    pages = [params.get("continuation") for path, params in fake.requests]
    if kind in ("hang", "bad_utf8", "bad_json"):
        # Retriable: the page was asked for once per attempt, then the run gave up.
        assert len(pages) == (page - 1) + ATTEMPTS
    if expected is None:
        assert await count(engine, FunnelEvent) == 0
    else:
        now = await snapshot(engine)
        assert (now["leads"], now["events"]) == (expected["leads"], expected["events"])


async def test_a_server_that_accepts_and_never_answers_times_out_per_request(
    factory: Factory, engine: AsyncEngine
) -> None:
    with silent_server() as base_url:
        result = await sync(factory, base_url)
    assert result.status == "failed"
    assert result.error_messages[-1].endswith("page 1: ReadTimeout")
    assert result.leads_processed == 0
    assert await count(engine, FunnelEvent) == 0
    [log] = await sync_logs(engine)
    assert log.status == "failed" and "ReadTimeout" in log.error_messages[-1]


@pytest.mark.slow  # see README, Tests
async def test_the_service_stays_responsive_while_its_sync_hangs_on_a_silent_source(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    env = {
        "SOURCE_TIMEOUT_SECONDS": "1",
        "SOURCE_RETRY_ATTEMPTS": "2",
        TOKEN_ENV: TOKEN,
        "LOG_LEVEL": "warning",
    }
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    with silent_server() as base_url, run_server(database_url, tmp_path, extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as http:
            added = await http.post(
                "/sources",
                json={
                    "source_type": "eventbrite",
                    "name": "Silent",
                    "config": eventbrite_config(base_url),
                },
            )
            assert added.status_code == 201, added.text
            started = await http.post("/sync/eventbrite", json={"wait": False})
            assert started.status_code == 202, started.text

            async def running() -> bool:
                status = (await http.get("/sync/status/eventbrite")).json()
                return bool(status["sources"][0]["is_running"])

            # Health, reads and writes all answer while the sync waits on the source.
            answered = 0
            while await running():
                assert (await http.get("/health")).status_code == 200
                r = await http.post(
                    "/funnel/event",
                    json={
                        "email": f"during-{answered}@example.com",
                        "source_type": "manual",
                        "event_type": "lead_captured",
                    },
                )
                assert r.status_code == 201, r.text
                answered += 1
                await asyncio.sleep(0.1)
            status = (await http.get("/sync/status/eventbrite")).json()
    assert answered > 0
    [log] = status["sources"][0]["recent_logs"]
    assert log["status"] == "failed"
    assert log["error_messages"][-1].endswith("page 1: ReadTimeout")
    assert await count(engine, FunnelEvent) == answered
