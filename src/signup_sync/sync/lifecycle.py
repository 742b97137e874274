"""What the sync engine runs inside the service: background syncs and the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from signup_sync.logs import get_logger
from signup_sync.settings import Settings
from signup_sync.sync.runner import Factory
from signup_sync.sync.scheduler import scheduler_loop
from signup_sync.sync.service import BackgroundSyncs

log = get_logger("signup_sync.sync")


@dataclass(slots=True)
class SyncServices:
    background: BackgroundSyncs
    scheduler: asyncio.Task[None] | None


@asynccontextmanager
async def sync_services(settings: Settings, factory: Factory) -> AsyncIterator[SyncServices]:
    """Start the scheduler (unless SYNC_SCHEDULER_ENABLED=false); stop everything on exit."""
    background = BackgroundSyncs()
    scheduler = None
    if settings.sync_scheduler_enabled:
        scheduler = asyncio.get_running_loop().create_task(scheduler_loop(factory, settings))
        log.info("scheduler_started", interval=settings.sync_scheduler_interval_seconds)
    try:
        yield SyncServices(background=background, scheduler=scheduler)
    finally:
        if scheduler is not None:
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
        await background.aclose()
