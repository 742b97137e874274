"""Starting a run: take the source's lease and open its ``running`` log (see ``sync.runner``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync.db.session import unit_of_work
from signup_sync.db.types import utcnow
from signup_sync.errors import Conflict, InvalidInput, NotFound
from signup_sync.logs import get_logger
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync import lease
from signup_sync.sync import repository as repo
from signup_sync.sync.schemas import SyncOptions

log = get_logger("signup_sync.sync")

Factory = async_sessionmaker[AsyncSession]
DEFAULT_LEASE_TTL = 300.0
DEFAULT_MAX_MESSAGES = 20


class SyncAlreadyRunning(Conflict):
    def __init__(self, source_id: int, source_name: str, sync_log_id: int | None) -> None:
        super().__init__(
            f"A sync of source {source_id} ({source_name}) is already running"
            + (f" (sync_log_id {sync_log_id})" if sync_log_id else ""),
            source_id=source_id,
            sync_log_id=sync_log_id,
        )
        self.source_id = source_id
        self.sync_log_id = sync_log_id


class NotDue(Exception):
    """The schedule slot was already claimed (another scheduler ran it)."""


@dataclass(slots=True)
class StartedSync:
    """A run that holds its source's lease and has a ``running`` log (dry runs hold neither)."""

    source_id: int
    source_type: str
    source_name: str
    config: dict[str, Any]
    cursor: dict[str, Any] | None
    options: SyncOptions
    trigger: str
    owner: str
    started_at: datetime
    log_id: int | None = None
    # The source's encrypted secret values ({name: token}), decrypted only when asked for.
    secret_values: dict[str, str] = field(default_factory=dict)


def retry_policy(settings: Settings | None) -> RetryPolicy:
    """The source-call retry policy the environment asks for (defaults without settings)."""
    if settings is None:
        return RetryPolicy()
    return RetryPolicy(
        attempts=settings.source_retry_attempts,
        max_total_seconds=settings.source_retry_max_seconds,
        timeout_seconds=settings.source_timeout_seconds,
    )


def limits(settings: Settings | None) -> tuple[float, int]:
    if settings is None:
        return DEFAULT_LEASE_TTL, DEFAULT_MAX_MESSAGES
    return settings.sync_lease_ttl_seconds, settings.sync_max_error_messages


class _Busy(Exception):
    pass


async def start_sync(
    factory: Factory,
    source_id: int,
    options: SyncOptions | None = None,
    *,
    settings: Settings | None = None,
    trigger: str = "api",
    scheduled_for: datetime | None = None,
) -> StartedSync:
    """Take the source's lease and open its log; raise SyncAlreadyRunning (409) if held."""
    options = options or SyncOptions()
    ttl, _ = limits(settings)
    async with factory() as session:
        source = await repo.get_source(session, source_id)
    if source is None:
        raise NotFound(f"No source with id {source_id}", field="source_id")
    if not source.is_active:
        raise InvalidInput(
            f"Source {source_id} ({source.name}) is inactive; reactivate it with "
            f'PATCH /sources/{source_id} {{"is_active": true}}',
            field="source_id",
        )
    started = StartedSync(
        source_id=source_id,
        source_type=source.source_type,
        source_name=source.name,
        config=dict(source.config or {}),
        secret_values=dict(source.secret_values or {}),
        cursor=None if options.force else source.cursor,
        options=options,
        trigger=trigger,
        owner=lease.new_owner(),
        started_at=utcnow(),
    )
    if options.dry_run:
        return started
    for _ in range(3):
        try:
            async with unit_of_work(factory) as session:
                await lease.reap_expired(session, source_id)
                now = utcnow()
                log_id = await repo.insert_log(
                    session,
                    {
                        "source_id": source_id,
                        "source_type": source.source_type,
                        "source_name": source.name,
                        "status": "running",
                        "trigger": trigger,
                        "started_at": now,
                        "options": options.as_json(),
                        "error_messages": [],
                        "leads_processed": 0,
                        "leads_created": 0,
                        "leads_updated": 0,
                        "leads_skipped": 0,
                        "errors_count": 0,
                    },
                )
                taken = await lease.acquire(
                    session,
                    source_id,
                    owner=started.owner,
                    log_id=log_id,
                    ttl_seconds=ttl,
                    scheduled_for=scheduled_for,
                )
                if not taken:
                    raise _Busy
                # Read config and cursor under the lease: the run before us may have moved it.
                current = await repo.get_source(session, source_id)
                assert current is not None
                started.config = dict(current.config or {})
                started.secret_values = dict(current.secret_values or {})
                started.cursor = None if options.force else current.cursor
                started.log_id = log_id
                started.started_at = now
            log.info("sync_started", source_id=source_id, sync_log_id=log_id, trigger=trigger)
            return started
        except _Busy:
            pass
        async with factory() as session:
            held = await lease.holder(session, source_id)
            now_source = await repo.get_source(session, source_id)
        if held is not None:
            raise SyncAlreadyRunning(source_id, started.source_name, held.sync_log_id)
        slot = now_source.last_scheduled_at if now_source else None
        if scheduled_for is not None and slot is not None and slot >= scheduled_for:
            raise NotDue
    raise SyncAlreadyRunning(source_id, started.source_name, None)


async def abandon(factory: Factory, run: StartedSync, reason: str) -> None:
    """Close a started run that will never execute (its background task was cancelled)."""
    if run.log_id is None:
        return
    async with unit_of_work(factory) as session:
        await lease.mark_interrupted(session, run.log_id, now=utcnow(), reason=reason)
        await lease.release(session, run.source_id, owner=run.owner)
