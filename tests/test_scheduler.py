"""The daily schedule: due slots run once across schedulers; off and new sources wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync.app import create_app
from signup_sync.db.models import FunnelSource, FunnelSyncLog
from signup_sync.db.session import create_engine, create_session_factory
from signup_sync.db.types import utcnow
from signup_sync.settings import Settings
from signup_sync.sync.scheduler import next_fire, previous_fire, run_due_syncs
from tests.sync_fakes import FakeConnector, add_source, fake_connector

__all__ = ["fake_connector"]

Factory = async_sessionmaker[AsyncSession]
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def factory(engine: AsyncEngine) -> Factory:
    return create_session_factory(engine)


@pytest.fixture
async def second_factory(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Factory]:
    other = create_engine(settings)
    yield create_session_factory(other)
    await other.dispose()


async def scheduled_logs(factory: Factory) -> list[tuple[int | None, str]]:
    async with factory() as session:
        rows = await session.execute(
            select(FunnelSyncLog.source_id, FunnelSyncLog.status)
            .where(FunnelSyncLog.trigger == "schedule")
            .order_by(FunnelSyncLog.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


def test_slots_are_computed_in_utc() -> None:
    now = datetime(2026, 3, 10, 2, 59, tzinfo=UTC)
    assert previous_fire("0 3 * * *", now) == datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
    assert previous_fire("0 3 * * *", now.replace(hour=3, minute=0)) == now.replace(
        hour=3, minute=0
    )
    assert next_fire("0 3 * * *", now) == datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


async def test_two_concurrent_schedulers_run_a_due_slot_exactly_once(
    factory: Factory, second_factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory, created_at=LONG_AGO)
    now = datetime(2030, 5, 1, 10, 0, tzinfo=UTC)
    first, second = await asyncio.gather(
        run_due_syncs(factory, now), run_due_syncs(second_factory, now)
    )
    assert len(first) + len(second) == 1
    assert (first + second)[0].status == "success"
    assert await scheduled_logs(factory) == [(source_id, "success")]

    # The same slot again, from either scheduler: nothing to do.
    assert await run_due_syncs(factory, now) == []
    assert await run_due_syncs(second_factory, now + timedelta(hours=1)) == []
    # The next day's slot runs once more.
    assert len(await run_due_syncs(second_factory, now + timedelta(days=1))) == 1
    assert len(await scheduled_logs(factory)) == 2


async def test_sources_run_on_their_own_cron_and_off_or_inactive_ones_never(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    every_15 = await add_source(factory, "quarterly", created_at=LONG_AGO, schedule="*/15 * * * *")
    await add_source(factory, "off", created_at=LONG_AGO, schedule="off")
    inactive = await add_source(factory, "inactive", created_at=LONG_AGO)
    async with factory() as session:
        await session.execute(
            update(FunnelSource).where(FunnelSource.id == inactive).values(is_active=False)
        )
        await session.commit()
    base = datetime(2030, 5, 1, 10, 7, tzinfo=UTC)
    ran = await run_due_syncs(factory, base)
    assert [r.source_id for r in ran] == [every_15]
    assert await run_due_syncs(factory, base + timedelta(minutes=7)) == []
    assert [r.source_id for r in await run_due_syncs(factory, base + timedelta(minutes=8))] == [
        every_15
    ]
    async with factory() as session:
        slot = (await session.get(FunnelSource, every_15)).last_scheduled_at  # type: ignore[union-attr]
    assert slot == datetime(2030, 5, 1, 10, 15, tzinfo=UTC)


async def test_a_new_source_waits_for_its_next_slot_and_the_default_is_3am_utc(
    factory: Factory, fake_connector: type[FakeConnector], settings: Settings
) -> None:
    created = datetime(2030, 5, 1, 10, 0, tzinfo=UTC)
    source_id = await add_source(factory, created_at=created)
    assert await run_due_syncs(factory, created + timedelta(hours=1), settings=settings) == []
    assert await run_due_syncs(factory, datetime(2030, 5, 2, 2, 59, tzinfo=UTC)) == []
    ran = await run_due_syncs(factory, datetime(2030, 5, 2, 3, 0, tzinfo=UTC), settings=settings)
    assert [r.source_id for r in ran] == [source_id]


async def test_a_tick_closes_the_logs_of_runs_whose_lease_expired(
    factory: Factory, fake_connector: type[FakeConnector]
) -> None:
    source_id = await add_source(factory, schedule="off")
    async with factory() as session:
        log = FunnelSyncLog(
            source_id=source_id,
            source_type="easyappointments",
            status="running",
            trigger="api",
            started_at=utcnow() - timedelta(minutes=10),
            error_messages=[],
            leads_processed=0,
            leads_created=0,
            leads_updated=0,
            leads_skipped=0,
            errors_count=0,
        )
        session.add(log)
        await session.flush()
        await session.execute(
            update(FunnelSource)
            .where(FunnelSource.id == source_id)
            .values(
                lease_owner="dead-host:1:abc",
                lease_expires_at=utcnow() - timedelta(minutes=5),
                lease_sync_log_id=log.id,
            )
        )
        await session.commit()
        log_id = log.id
    await run_due_syncs(factory)
    async with factory() as session:
        closed = await session.get(FunnelSyncLog, log_id)
        source = await session.get(FunnelSource, source_id)
    assert closed is not None and source is not None
    assert closed.status == "failed" and "interrupted" in closed.error_messages[0]
    assert source.lease_owner is None and source.last_sync_status == "failed"


async def test_the_service_runs_the_scheduler_unless_switched_off(
    settings: Settings, engine: AsyncEngine
) -> None:
    on = create_app(settings.model_copy(update={"sync_scheduler_enabled": True}))
    async with LifespanManager(on):
        task = on.state.sync.scheduler
        assert task is not None and not task.done()
    assert task.cancelled() or task.done()

    off = create_app(settings)
    async with LifespanManager(off):
        assert off.state.sync.scheduler is None


async def test_file_based_connectors_are_not_scheduled(
    factory: Factory, fake_connector: type[FakeConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeConnector, "requires_upload", True, raising=False)
    await add_source(factory, created_at=LONG_AGO)
    assert await run_due_syncs(factory, datetime(2030, 5, 1, 10, 0, tzinfo=UTC)) == []
