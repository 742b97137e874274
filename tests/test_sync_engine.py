"""The sync engine (``run_sync``) with a fake connector: counts, cursor, crashes, lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent, FunnelSource, FunnelSyncLog
from signup_sync.db.session import create_engine, create_session_factory
from signup_sync.db.types import utcnow
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import SyncAlreadyRunning, SyncProgress, run_sync
from signup_sync.sync.schemas import SyncOptions
from tests.conftest import truncate_all
from tests.sync_fakes import (
    BASE_TIME,
    FakeConnector,
    Killed,
    add_source,
    count_rows,
    fake_connector,
    record,
    snapshot,
)

__all__ = ["fake_connector"]

Factory = async_sessionmaker[AsyncSession]


@pytest.fixture
def factory(engine: AsyncEngine) -> Factory:
    return create_session_factory(engine)


@pytest.fixture
async def second_factory(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Factory]:
    """Another engine on the same database: another process or replica."""
    other = create_engine(settings)
    yield create_session_factory(other)
    await other.dispose()


async def get_log(factory: Factory, log_id: int) -> FunnelSyncLog:
    async with factory() as session:
        row = await session.get(FunnelSyncLog, log_id)
        assert row is not None
        return row


async def get_source(factory: Factory, source_id: int) -> FunnelSource:
    async with factory() as session:
        row = await session.get(FunnelSource, source_id)
        assert row is not None
        return row


async def test_a_full_sync_counts_every_record_exactly(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    seen: list[SyncProgress] = []
    result = await run_sync(factory, source_id, progress=seen.append)

    assert result.status == "success"
    assert (result.leads_processed, result.leads_created, result.leads_updated) == (7, 4, 1)
    assert (result.leads_skipped, result.errors_count, result.pages) == (2, 1, 3)
    assert result.details["skip_reasons"] == {"no email": 1, "mapping error: ValueError": 1}
    assert result.details["events_stored"] == 5
    assert "page 2, record 3: ValueError: unparseable start time" in result.error_messages[0]
    assert [p.pages for p in seen] == [1, 2, 3]
    assert [p.records for p in seen] == [3, 6, 7]
    assert await count_rows(factory, "funnel_leads") == 4
    assert await count_rows(factory, "funnel_events") == 5

    log = await get_log(factory, result.sync_log_id or 0)
    assert log.status == "success"
    assert (log.leads_processed, log.leads_created, log.leads_updated) == (7, 4, 1)
    assert (log.leads_skipped, log.errors_count) == (2, 1)
    assert log.completed_at is not None and log.duration_seconds is not None
    assert log.trigger == "api"
    source = await get_source(factory, source_id)
    assert source.last_sync_status == "success"
    assert source.last_sync_at == log.completed_at
    assert source.total_leads_captured == 4
    assert source.cursor == {"after": [7, 7]}
    assert source.lease_owner is None and source.lease_sync_log_id is None
    assert FakeConnector.closed == 1
    # Every stored event carries the source's id.
    async with factory() as session:
        ids = set((await session.execute(select(FunnelEvent.source_id))).scalars())
    assert ids == {source_id}


async def test_a_second_run_adds_nothing_and_force_rereads_idempotently(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    await run_sync(factory, source_id)
    before = await snapshot(factory)

    again = await run_sync(factory, source_id)
    assert again.status == "success"
    assert (again.leads_processed, again.leads_created, again.leads_updated) == (0, 0, 0)
    assert FakeConnector.contexts[-1].cursor == {"after": [7, 7]}

    forced = await run_sync(factory, source_id, SyncOptions(force=True))
    assert FakeConnector.contexts[-1].cursor is None and FakeConnector.contexts[-1].force
    assert (forced.leads_processed, forced.leads_created, forced.leads_updated) == (7, 0, 0)
    assert forced.leads_skipped == 2
    assert forced.details["records_unchanged"] == 5
    assert await snapshot(factory) == before


async def test_an_incremental_run_picks_up_only_the_changes(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    await run_sync(factory, source_id)
    data = FakeConnector.data["default"]
    data[1].update(status="cancelled", updated=8)  # b cancels
    data.append(record(9, "e@example.com"))

    result = await run_sync(factory, source_id)
    assert (result.leads_processed, result.leads_created, result.leads_updated) == (2, 1, 1)
    assert result.details["events_status_changed"] == 1
    assert await count_rows(factory, "funnel_leads") == 5
    assert await count_rows(factory, "funnel_events") == 6
    assert (await get_source(factory, source_id)).total_leads_captured == 5


async def test_a_window_is_passed_to_the_connector(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    since, until = BASE_TIME + timedelta(days=2), BASE_TIME + timedelta(days=5)
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    result = await run_sync(
        factory,
        source_id,
        SyncOptions(since=since, until=until),
        transport=transport,
        retry=RetryPolicy(wait_scale=0),
        upload=b"col\n1\n",
    )
    ctx = FakeConnector.contexts[-1]
    assert (ctx.since, ctx.until, ctx.upload) == (since, until, b"col\n1\n")
    assert ctx.transport is transport and ctx.retry.wait_scale == 0
    assert ctx.run_started_at == result.started_at
    assert result.leads_processed == 3  # records 2, 3 and 4


async def test_a_run_killed_after_page_k_resumes_to_the_same_rows(
    engine: AsyncEngine, factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    FakeConnector.data["default"] = [record(i, f"p{i % 7}@example.com") for i in range(1, 15)]
    source_id = await add_source(factory)
    uninterrupted = await run_sync(factory, source_id)
    expected = await snapshot(factory)
    assert uninterrupted.leads_processed == 14

    await truncate_all(engine)
    source_id = await add_source(factory)
    FakeConnector.fail = (3, "kill")
    with pytest.raises(Killed):
        await run_sync(factory, source_id)
    # Pages 1 and 2 landed with their cursor; the run's log and lease are left behind.
    assert await count_rows(factory, "funnel_events") == 6
    source = await get_source(factory, source_id)
    assert source.cursor == {"after": [6, 6]}
    killed_log = source.lease_sync_log_id
    assert killed_log is not None and (await get_log(factory, killed_log)).status == "running"

    FakeConnector.fail = None
    with pytest.raises(SyncAlreadyRunning) as busy:
        await run_sync(factory, source_id)
    assert busy.value.sync_log_id == killed_log

    # Time passes: the dead run's lease expires.
    async with factory() as session:
        await session.execute(
            update(FunnelSource)
            .where(FunnelSource.id == source_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    resumed = await run_sync(factory, source_id)
    assert resumed.status == "success"
    assert resumed.leads_processed == 8  # only what was not committed
    old = await get_log(factory, killed_log)
    assert old.status == "failed"
    assert any("interrupted" in m for m in old.error_messages)
    assert old.completed_at is not None
    assert await snapshot(factory) == expected


@pytest.mark.parametrize(("kind", "status"), [("retriable", "partial"), ("fatal", "partial")])
async def test_an_error_after_some_pages_ends_partial_and_a_rerun_completes(
    factory: Factory, fake_connector: type[FakeConnector], kind: str, status: str
) -> None:
    source_id = await add_source(factory)
    FakeConnector.fail = (2, kind)
    result = await run_sync(factory, source_id)
    assert result.status == status
    assert result.pages == 1 and result.leads_processed == 3
    assert "page 2" in result.error_messages[-1]
    log = await get_log(factory, result.sync_log_id or 0)
    assert log.status == status and "stopped" in (log.summary or "")
    assert (await get_source(factory, source_id)).last_sync_status == status

    FakeConnector.fail = None
    rest = await run_sync(factory, source_id)
    assert rest.status == "success" and rest.leads_processed == 4
    assert await count_rows(factory, "funnel_events") == 5


async def test_an_error_before_any_page_fails_the_run(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    FakeConnector.fail = (1, "fatal")
    result = await run_sync(factory, source_id)
    assert result.status == "failed"
    assert result.error_messages == ["FatalSourceError: page 1: not authorised (401)"]
    assert (await get_source(factory, source_id)).cursor is None


async def test_a_missing_secret_fails_naming_the_variable_and_values_never_leak(
    factory: Factory, fake_connector: type[FakeConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    source_id = await add_source(
        factory, config={"api_key_env": "SIGNUP_SYNC_SOURCE_FAKE_SYNC_API_KEY"}
    )
    monkeypatch.delenv("SIGNUP_SYNC_SOURCE_FAKE_SYNC_API_KEY", raising=False)
    missing = await run_sync(factory, source_id)
    assert missing.status == "failed"
    assert "SIGNUP_SYNC_SOURCE_FAKE_SYNC_API_KEY is not set" in missing.error_messages[0]

    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_FAKE_SYNC_API_KEY", "s3cr3t-value-123")
    FakeConnector.fail = (1, "secret")
    leaked = await run_sync(factory, source_id)
    assert leaked.status == "failed"
    assert "s3cr3t" not in leaked.model_dump_json()
    assert "[redacted]" in leaked.error_messages[0]
    log = await get_log(factory, leaked.sync_log_id or 0)
    assert "s3cr3t" not in str(log.error_messages) + str(log.summary)


async def test_an_invalid_stored_config_or_a_type_without_connector_fails_clearly(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    bad = await add_source(factory, "bad", config={"page_size": 0})
    result = await run_sync(factory, bad)
    assert result.status == "failed"
    assert "config.page_size" in result.error_messages[0]

    zoom = await add_source(factory, "webinars", source_type="zoom")
    result = await run_sync(factory, zoom)
    assert result.status == "failed"
    assert "no connector is registered for source type 'zoom'" in result.error_messages[0]


async def test_dry_run_reports_what_would_change_and_writes_nothing(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    result = await run_sync(factory, source_id, SyncOptions(dry_run=True))
    assert result.dry_run and result.status == "success" and result.sync_log_id is None
    assert (result.leads_processed, result.leads_created, result.leads_updated) == (7, 4, 1)
    assert result.message.startswith("dry run, nothing written")
    for table in ("funnel_leads", "funnel_events", "funnel_sync_logs"):
        assert await count_rows(factory, table) == 0, table
    source = await get_source(factory, source_id)
    assert source.cursor is None and source.last_sync_at is None
    assert source.total_leads_captured == 0


async def test_two_concurrent_runs_of_one_source_one_runs_one_is_refused(
    factory: Factory, second_factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    FakeConnector.hold = asyncio.Event()
    FakeConnector.entered = asyncio.Event()
    hold = FakeConnector.hold
    first = asyncio.create_task(run_sync(factory, source_id))
    await FakeConnector.entered.wait()

    with pytest.raises(SyncAlreadyRunning) as busy:
        await run_sync(second_factory, source_id)  # another replica
    running = await get_source(factory, source_id)
    assert busy.value.sync_log_id == running.lease_sync_log_id is not None
    assert busy.value.status_code == 409

    hold.set()
    result = await first
    assert result.status == "success" and result.sync_log_id == busy.value.sync_log_id
    assert await count_rows(factory, "funnel_sync_logs") == 1


async def test_a_run_that_lost_its_lease_writes_nothing_more(
    factory: Factory, second_factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory)
    FakeConnector.hold = asyncio.Event()
    FakeConnector.entered = asyncio.Event()
    hold = FakeConnector.hold
    stalled = asyncio.create_task(run_sync(factory, source_id))
    await FakeConnector.entered.wait()
    async with factory() as session:  # the stalled run outlives its TTL
        await session.execute(
            update(FunnelSource).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    takeover = await run_sync(second_factory, source_id)
    assert takeover.status == "success" and takeover.leads_created == 4
    hold.set()
    late = await stalled
    assert late.status == "failed" and "lease lost" in late.error_messages[-1]
    old = await get_log(factory, late.sync_log_id or 0)
    assert old.status == "failed" and "interrupted" in (old.summary or "")
    assert await count_rows(factory, "funnel_events") == 5
    source = await get_source(factory, source_id)
    assert source.last_sync_status == "success" and source.total_leads_captured == 4


async def test_many_pages_stream_one_at_a_time(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    FakeConnector.data["default"] = [record(i, f"u{i}@example.com") for i in range(1, 201)]
    source_id = await add_source(factory, config={"page_size": 7})
    sizes: list[Any] = []
    result = await run_sync(factory, source_id, progress=sizes.append)
    assert result.pages == 29 and result.leads_created == 200
    assert sizes[-1].records == 200 and sizes[-1].records_per_second >= 0


async def test_a_heartbeat_keeps_the_lease_while_a_page_waits(
    factory: Factory,
    second_factory: Factory,
    fake_connector: type[FakeConnector],
    settings: Settings,
) -> None:
    short = settings.model_copy(update={"sync_lease_ttl_seconds": 0.6})
    source_id = await add_source(factory)
    FakeConnector.hold = asyncio.Event()
    FakeConnector.entered = asyncio.Event()
    hold = FakeConnector.hold
    waiting = asyncio.create_task(run_sync(factory, source_id, settings=short))
    await FakeConnector.entered.wait()
    await asyncio.sleep(1.5)  # well past the TTL: only the heartbeat keeps the lease alive
    with pytest.raises(SyncAlreadyRunning):
        await run_sync(second_factory, source_id, settings=short)
    hold.set()
    assert (await waiting).status == "success"


async def test_page_cap_ends_partial_and_the_next_run_continues(
    factory: Factory,
    fake_connector: type[FakeConnector],
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    capped = settings.model_copy(update={"sync_max_pages_per_run": 2})
    source_id = await add_source(factory)
    first = await run_sync(factory, source_id, settings=capped)
    assert first.status == "partial"
    assert first.pages == 2 and first.leads_processed == 6
    assert "SYNC_MAX_PAGES_PER_RUN" in first.message
    assert "SYNC_MAX_PAGES_PER_RUN" in first.error_messages[-1]
    assert (await get_source(factory, source_id)).cursor == {"after": [6, 6]}
    assert (await get_log(factory, first.sync_log_id or 0)).status == "partial"

    rest = await run_sync(factory, source_id, settings=capped)
    assert rest.status == "success"
    assert rest.pages == 1 and rest.leads_processed == 1
    capped_state = await snapshot(factory)

    await truncate_all(engine)
    whole = await add_source(factory)
    assert (await run_sync(factory, whole)).status == "success"
    assert await snapshot(factory) == capped_state


async def test_a_run_of_exactly_the_page_cap_succeeds(
    factory: Factory, fake_connector: type[FakeConnector], settings: Settings
) -> None:
    capped = settings.model_copy(update={"sync_max_pages_per_run": 3})
    result = await run_sync(factory, await add_source(factory), settings=capped)
    assert result.status == "success" and result.pages == 3
