"""Queries over sources and sync logs (the lease has its own module, ``sync.lease``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import FunnelSource, FunnelSyncLog

FINISHED = ("success", "partial", "failed")


async def get_source(session: AsyncSession, source_id: int) -> FunnelSource | None:
    result = await session.execute(
        select(FunnelSource)
        .where(FunnelSource.id == source_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def find_source(session: AsyncSession, source_type: str, name: str) -> FunnelSource | None:
    result = await session.execute(
        select(FunnelSource).where(
            FunnelSource.source_type == source_type, FunnelSource.name == name
        )
    )
    return result.scalar_one_or_none()


async def list_sources(
    session: AsyncSession,
    *,
    source_types: Collection[str] | None = None,
    active: bool | None = None,
) -> Sequence[FunnelSource]:
    query = select(FunnelSource).order_by(FunnelSource.source_type, FunnelSource.id)
    if source_types is not None:
        query = query.where(FunnelSource.source_type.in_(sorted(source_types)))
    if active is not None:
        query = query.where(FunnelSource.is_active.is_(active))
    result = await session.execute(query.execution_options(populate_existing=True))
    return result.scalars().all()


async def add_source(session: AsyncSession, source: FunnelSource) -> FunnelSource:
    session.add(source)
    await session.flush()
    return source


def page_progress(cursor: dict[str, Any] | None, leads_created: int) -> dict[str, Any]:
    """Source values a committed page sets: its cursor (when it gave one) and the new leads."""
    values: dict[str, Any] = {
        "total_leads_captured": FunnelSource.total_leads_captured + leads_created
    }
    if cursor is not None:
        values["cursor"] = cursor
    return values


async def store_page_progress(
    session: AsyncSession,
    source_id: int,
    *,
    cursor: dict[str, Any] | None,
    leads_created: int,
) -> None:
    """The page's cursor and new leads, in the page's transaction."""
    await session.execute(
        update(FunnelSource)
        .where(FunnelSource.id == source_id)
        .values(page_progress(cursor, leads_created))
    )


async def finish_source(
    session: AsyncSession, source_id: int, *, at: datetime, status: str
) -> None:
    await session.execute(
        update(FunnelSource)
        .where(FunnelSource.id == source_id)
        .values(
            last_sync_at=at,
            last_sync_status=status,
            **({"last_success_at": at} if status == "success" else {}),
        )
    )


async def insert_log(session: AsyncSession, values: dict[str, Any]) -> int:
    result = await session.execute(insert(FunnelSyncLog).values(values).returning(FunnelSyncLog.id))
    return int(result.scalar_one())


async def update_running_log(session: AsyncSession, log_id: int, values: dict[str, Any]) -> bool:
    """Update a log that is still running; False if someone already closed it."""
    result = await session.execute(
        update(FunnelSyncLog)
        .where(FunnelSyncLog.id == log_id, FunnelSyncLog.status == "running")
        .values(values)
    )
    return bool(getattr(result, "rowcount", 0))


async def get_log(session: AsyncSession, log_id: int) -> FunnelSyncLog | None:
    result = await session.execute(
        select(FunnelSyncLog)
        .where(FunnelSyncLog.id == log_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def recent_logs(
    session: AsyncSession, source_id: int, limit: int = 10
) -> Sequence[FunnelSyncLog]:
    result = await session.execute(
        select(FunnelSyncLog)
        .where(FunnelSyncLog.source_id == source_id)
        .order_by(FunnelSyncLog.started_at.desc(), FunnelSyncLog.id.desc())
        .limit(limit)
    )
    return result.scalars().all()


async def success_counts(
    session: AsyncSession, source_ids: Collection[int]
) -> dict[int, tuple[int, int]]:
    """``{source id: (successful runs, finished runs)}`` over each source's whole history."""
    if not source_ids:
        return {}
    result = await session.execute(
        select(
            FunnelSyncLog.source_id,
            func.sum(case((FunnelSyncLog.status == "success", 1), else_=0)),
            func.count(),
        )
        .where(
            FunnelSyncLog.source_id.in_(sorted(source_ids)),
            FunnelSyncLog.status.in_(FINISHED),
        )
        .group_by(FunnelSyncLog.source_id)
    )
    return {int(sid): (int(ok or 0), int(total)) for sid, ok, total in result.all()}


async def source_freshness(
    session: AsyncSession,
) -> list[tuple[int, str, str, datetime, datetime | None]]:
    """(id, type, name, created_at, last_success_at) of every active source."""
    rows = await session.execute(
        select(
            FunnelSource.id,
            FunnelSource.source_type,
            FunnelSource.name,
            FunnelSource.created_at,
            FunnelSource.last_success_at,
        )
        .where(FunnelSource.is_active.is_(True))
        .order_by(FunnelSource.id)
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]
