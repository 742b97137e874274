"""Syncs on demand (per source type, or every source) and their status.

The sync engine is its own edge: it commits once per page, so these functions take the
session factory rather than a session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync import sources
from signup_sync.db.models import FunnelSource
from signup_sync.db.types import utcnow
from signup_sync.errors import InvalidInput, NotFound
from signup_sync.logs import get_logger
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy, needs_upload
from signup_sync.sync import repository as repo
from signup_sync.sync.runner import (
    Factory,
    ProgressFn,
    StartedSync,
    SyncAlreadyRunning,
    abandon,
    execute,
    start_sync,
)
from signup_sync.sync.scheduler import next_fire, schedule_of
from signup_sync.sync.schemas import (
    SourceStatus,
    SourceSyncResult,
    StartedSource,
    SyncAccepted,
    SyncLogOut,
    SyncRequest,
    SyncResponse,
    SyncStatusOut,
    SyncSummary,
)
from signup_sync.vocabulary import PULLED_SOURCE_TYPES, SourceType

log = get_logger("signup_sync.sync")

ALL = "all"


def syncable_types() -> list[str]:
    """Source types a sync can run for: the pulled ones and any with a registered connector."""
    return sorted({t.value for t in PULLED_SOURCE_TYPES} | set(sources.REGISTRY))


def check_source_type(source_type: str, *, for_sync: bool) -> str:
    """404 naming the valid types for an unknown one; 422 for a push-only type on a sync."""
    known = {t.value for t in SourceType} | set(sources.REGISTRY)
    valid = syncable_types() if for_sync else sorted(known)
    if source_type not in known:
        raise NotFound(
            f"Unknown source type {source_type!r}; valid: {', '.join(valid)}",
            field="source_type",
            valid_source_types=valid,
        )
    if for_sync and source_type not in valid:
        raise InvalidInput(
            f"{source_type} has no connector to sync from: its events arrive through "
            f"POST /funnel/event (or a CSV import). Syncable: {', '.join(valid)}",
            field="source_type",
            valid_source_types=valid,
        )
    return source_type


class BackgroundSyncs:
    """Syncs answered with 202 run here; stopping the service cancels them cleanly."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Awaitable[None]) -> None:
        async def _run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(_run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self) -> None:
        """Wait for every background sync to end (tests; graceful stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.join()


async def _targets(factory: Factory, source_type: str, source_id: int | None) -> list[FunnelSource]:
    async with factory() as session:
        if source_id is None:
            types = syncable_types() if source_type == ALL else [source_type]
            return list(await repo.list_sources(session, source_types=types, active=True))
        source = await repo.get_source(session, source_id)
    if source is None:
        raise NotFound(f"No source with id {source_id}", field="source_id")
    if source_type not in (ALL, source.source_type):
        raise InvalidInput(
            f"Source {source_id} is a {source.source_type} source, not {source_type}",
            field="source_id",
        )
    return [source]


def _skipped_result(
    source: FunnelSource, reason: str, sync_log_id: int | None = None
) -> SourceSyncResult:
    now = utcnow()
    return SourceSyncResult(
        status="skipped",
        source_type=source.source_type,
        source_id=source.id,
        source_name=source.name,
        started_at=now,
        completed_at=now,
        duration_seconds=0.0,
        sync_log_id=sync_log_id,
        message=f"skipped: {reason}",
    )


def _waits_for_upload(source: FunnelSource) -> bool:
    connector = sources.REGISTRY.get(source.source_type)
    return connector is not None and needs_upload(connector, source.config or {})


def _next_run(source: FunnelSource, expr: str | None, now: datetime) -> datetime | None:
    """When the scheduler will run it: never when inactive or waiting for an upload."""
    if not expr or not source.is_active or _waits_for_upload(source):
        return None
    return next_fire(expr, now)


UPLOAD_HINT = (
    "upload the export (multipart part 'file' or a text/csv body; CLI: --file), "
    "or set file_path or file_url in the source's config"
)


def _check_upload(source_type: str, targets: Sequence[FunnelSource]) -> None:
    """An uploaded file is for exactly one source of a type that reads files."""
    connector = sources.REGISTRY.get(source_type)
    if source_type == ALL or connector is None or not getattr(connector, "requires_upload", False):
        reads = sorted(t for t, c in sources.REGISTRY.items() if getattr(c, "requires_upload", 0))
        raise InvalidInput(
            f"{source_type} does not read an uploaded file; only {', '.join(reads)} do",
            field="file",
        )
    if len(targets) > 1:
        raise InvalidInput(
            f"{len(targets)} active {source_type} sources: name the one this file is for "
            "with source_id",
            field="source_id",
        )


def aggregate(
    source_type: str, results: Sequence[SourceSyncResult], *, dry_run: bool
) -> SyncResponse:
    """One response for several sources: counters summed, each source's result kept."""
    now = utcnow()
    ran = [r for r in results if r.status != "skipped"]
    statuses = {r.status for r in ran}
    if not ran:
        status = "skipped"
    elif statuses == {"success"}:
        status = "success"
    elif statuses == {"failed"}:
        status = "failed"
    else:
        status = "partial"

    def total(name: str) -> int:
        return sum(int(getattr(r, name)) for r in results)

    if not results:
        what = "source" if source_type == ALL else f"{source_type} source"
        message = (
            f"No active {what} is configured; add one with POST /sources "
            "or `signup-sync sources add`"
        )
    else:
        counts = {s: sum(1 for r in results if r.status == s) for s in sorted(statuses)}
        message = f"{len(results)} source(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
        skipped = len(results) - len(ran)
        if skipped:
            message += f", {skipped} skipped (already running or waiting for a file)"
    log_ids = [r.sync_log_id for r in ran if r.sync_log_id is not None]
    started = min((r.started_at for r in results), default=now)
    completed = max((r.completed_at or now for r in results), default=now)
    names = [r.source_name or "" for r in results]
    return SyncResponse(
        status=status,
        source_type=source_type,
        source_name=names[0] if len(names) == 1 else (", ".join(names) or None),
        leads_processed=total("leads_processed"),
        leads_created=total("leads_created"),
        leads_updated=total("leads_updated"),
        leads_skipped=total("leads_skipped"),
        errors_count=total("errors_count"),
        error_messages=[
            f"{r.source_name}: {m}" if len(results) > 1 else m
            for r in results
            for m in r.error_messages
        ],
        started_at=started,
        completed_at=completed,
        duration_seconds=round(max(0.0, (completed - started).total_seconds()), 3),
        sync_log_id=log_ids[0] if log_ids else None,
        sync_log_ids=log_ids,
        dry_run=dry_run,
        summary=SyncSummary(
            message=message,
            sources_total=len(results),
            sources_succeeded=sum(1 for r in results if r.status == "success"),
            sources_partial=sum(1 for r in results if r.status == "partial"),
            sources_failed=sum(1 for r in results if r.status == "failed"),
            sources_skipped=len(results) - len(ran),
            leads_processed=total("leads_processed"),
            leads_created=total("leads_created"),
            leads_updated=total("leads_updated"),
            leads_skipped=total("leads_skipped"),
            errors_count=total("errors_count"),
            sources=list(results),
        ),
    )


async def sync_sources(
    factory: Factory,
    source_type: str,
    request: SyncRequest | None = None,
    *,
    settings: Settings | None = None,
    background: BackgroundSyncs | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
    upload: bytes | None = None,
    progress: ProgressFn | None = None,
) -> SyncResponse | SyncAccepted:
    """Sync every active source of a type (``all``: of every type), or the one asked for.

    Sources run one after another; one failing does not stop the rest. A source already
    syncing is reported ``skipped``; if that leaves nothing to run, 409 with its log id.
    """
    request = request or SyncRequest()
    if source_type != ALL:
        check_source_type(source_type, for_sync=True)
    options = request.options()
    targets = await _targets(factory, source_type, request.source_id)
    waiting: list[FunnelSource] = []
    if upload is not None:
        _check_upload(source_type, targets)
    else:
        waiting = [s for s in targets if _waits_for_upload(s)]
        targets = [s for s in targets if s not in waiting]
        if waiting and not targets and source_type != ALL:
            names = ", ".join(f"{s.name} (#{s.id})" for s in waiting)
            raise InvalidInput(f"{names} has no file to read: {UPLOAD_HINT}", field="file")
    started: list[StartedSync] = []
    results = [_skipped_result(s, f"needs an uploaded export: {UPLOAD_HINT}") for s in waiting]
    conflicts: list[SyncAlreadyRunning] = []
    for source in targets:
        try:
            started.append(await start_sync(factory, source.id, options, settings=settings))
        except SyncAlreadyRunning as exc:
            conflicts.append(exc)
            results.append(_skipped_result(source, exc.message, exc.sync_log_id))
    if conflicts and not started and source_type != ALL:
        raise conflicts[0]

    async def run_all() -> list[SourceSyncResult]:
        done: list[SourceSyncResult] = []
        for index, run in enumerate(started):
            try:
                done.append(
                    await execute(
                        factory,
                        run,
                        settings=settings,
                        transport=transport,
                        retry=retry,
                        upload=upload,
                        progress=progress,
                    )
                )
            except asyncio.CancelledError:
                for rest in started[index + 1 :]:
                    await asyncio.shield(abandon(factory, rest, "interrupted: service stopped"))
                raise
        return done

    if not request.wait and background is not None and started:

        async def in_background() -> None:
            try:
                await run_all()
            except Exception as exc:  # a background task has nobody to answer to: log it
                log.error("background_sync_failed", error=type(exc).__name__)

        background.spawn(in_background())
        ids = [r.log_id for r in started if r.log_id is not None]
        return SyncAccepted(
            source_type=source_type,
            sync_log_id=ids[0] if ids else None,
            sync_log_ids=ids,
            sources=[
                StartedSource(
                    source_id=r.source_id, source_name=r.source_name, sync_log_id=r.log_id
                )
                for r in started
            ],
            status_url=f"/sync/status/{started[0].source_type if source_type != ALL else ALL}",
            message=f"{len(started)} sync(s) started in the background",
        )
    results.extend(await run_all())
    results.sort(key=lambda r: r.source_id or 0)
    return aggregate(source_type, results, dry_run=options.dry_run)


def _log_out(row: object) -> SyncLogOut:
    return SyncLogOut.model_validate(row, from_attributes=True)


async def sync_status(
    session: AsyncSession, source_type: str, *, default_schedule: str, now: datetime | None = None
) -> SyncStatusOut:
    """Per source of the type: last sync, whether one runs, success rate, last 10 logs."""
    check_source_type(source_type, for_sync=False)
    now = now or utcnow()
    found = await repo.list_sources(session, source_types=[source_type])
    rates = await repo.success_counts(session, [s.id for s in found])
    out: list[SourceStatus] = []
    for source in found:
        live = bool(
            source.lease_owner and source.lease_expires_at and source.lease_expires_at > now
        )
        ok, finished = rates.get(source.id, (0, 0))
        expr = schedule_of(source.schedule, default_schedule)
        out.append(
            SourceStatus(
                source_id=source.id,
                source_name=source.name,
                is_active=source.is_active,
                schedule=source.schedule,
                next_scheduled_at=_next_run(source, expr, now),
                last_sync_at=source.last_sync_at,
                last_sync_status=source.last_sync_status,
                is_running=live,
                running_sync_log_id=source.lease_sync_log_id if live else None,
                success_rate=round(ok / finished, 4) if finished else None,
                total_leads_captured=source.total_leads_captured,
                recent_logs=[_log_out(r) for r in await repo.recent_logs(session, source.id)],
            )
        )
    synced = [s for s in out if s.last_sync_at is not None]
    latest = max(synced, key=lambda s: s.last_sync_at or now, default=None)
    return SyncStatusOut(
        source_type=source_type,
        has_connector=source_type in sources.REGISTRY,
        last_sync_at=latest.last_sync_at if latest else None,
        last_sync_status=latest.last_sync_status if latest else None,
        is_running=any(s.is_running for s in out),
        sources=out,
    )
