"""The daily schedule: every active source syncs at its cron time (UTC), once per slot.

Each replica may run a scheduler (a lifespan task, or ``signup-sync scheduler``); they
coordinate only through the database. Starting a scheduled run claims its slot (the
cron fire time, in ``funnel_sources.last_scheduled_at``) in the same conditional UPDATE
that takes the source's lease, so a slot runs exactly once however many schedulers see
it due. A source created after a slot waits for the next one (or a sync on demand); a
slot missed while no scheduler ran is caught up once.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import httpx
from croniter import croniter

from signup_sync import sources
from signup_sync.db.session import unit_of_work
from signup_sync.db.types import utcnow
from signup_sync.logs import get_logger
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy, needs_upload
from signup_sync.sync import lease
from signup_sync.sync import repository as repo
from signup_sync.sync.runner import Factory, NotDue, SyncAlreadyRunning, execute, start_sync
from signup_sync.sync.schemas import SourceSyncResult, SyncOptions

log = get_logger("signup_sync.scheduler")

DEFAULT_SCHEDULE = "0 3 * * *"


def schedule_of(schedule: str | None, default: str = DEFAULT_SCHEDULE) -> str | None:
    """The cron expression a source runs on; None when its schedule is ``off``."""
    if schedule is None or not schedule.strip():
        return default
    if schedule.strip().lower() == "off":
        return None
    return schedule


def previous_fire(expr: str, now: datetime) -> datetime:
    """The latest slot at or before ``now`` (UTC)."""
    moment = now.astimezone(UTC)
    fire: datetime = croniter(expr, moment).get_prev(datetime)
    # croniter steps back strictly; a slot exactly at ``now`` is due now.
    following: datetime = croniter(expr, fire).get_next(datetime)
    return following if following <= moment else fire


def next_fire(expr: str, now: datetime) -> datetime:
    fire: datetime = croniter(expr, now.astimezone(UTC)).get_next(datetime)
    return fire


async def run_due_syncs(
    factory: Factory,
    now: datetime | None = None,
    *,
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> list[SourceSyncResult]:
    """One scheduler tick: run every source whose slot at ``now`` has not run yet.

    Returns the results of the runs this call made (not those another scheduler made).
    """
    now = now or utcnow()
    default = settings.sync_default_schedule if settings else DEFAULT_SCHEDULE
    async with unit_of_work(factory) as session:
        reaped = await lease.reap_expired(session)
    if reaped:
        log.warning("sync_leases_expired", sync_log_ids=reaped)
    async with factory() as session:
        candidates = await repo.list_sources(
            session, source_types=list(sources.REGISTRY), active=True
        )
    results: list[SourceSyncResult] = []
    for source in candidates:
        expr = schedule_of(source.schedule, default)
        # A file-based source without a configured file waits for an upload: nothing to pull.
        if expr is None or needs_upload(sources.REGISTRY[source.source_type], source.config or {}):
            continue
        slot = previous_fire(expr, now)
        last = source.last_scheduled_at
        if (last is not None and last >= slot) or (last is None and source.created_at >= slot):
            continue
        try:
            run = await start_sync(
                factory,
                source.id,
                SyncOptions(),
                settings=settings,
                trigger="schedule",
                scheduled_for=slot,
            )
        except (SyncAlreadyRunning, NotDue):
            continue
        log.info("scheduled_sync", source_id=source.id, slot=slot.isoformat())
        results.append(
            await execute(factory, run, settings=settings, transport=transport, retry=retry)
        )
    return results


async def scheduler_loop(factory: Factory, settings: Settings) -> None:
    """Tick every ``SYNC_SCHEDULER_INTERVAL_SECONDS`` until cancelled; errors are logged."""
    interval = settings.sync_scheduler_interval_seconds
    # Replicas started together spread their ticks out.
    await asyncio.sleep(random.uniform(0, interval))  # noqa: S311 - jitter, not security
    while True:
        try:
            await run_due_syncs(factory, settings=settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("scheduler_tick_failed", error=type(exc).__name__, detail=str(exc)[:200])
        await asyncio.sleep(interval)
