"""Dashboard queries beyond the analytics services: weekly counts, source status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.repository import CohortFilter
from signup_sync.db.dates import as_date, week_start
from signup_sync.db.models import FunnelSource, Lead


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def weekly_counts(
    session: AsyncSession, cohort: CohortFilter, column: Any, *where: Any
) -> dict[date, int]:
    """Cohort leads per week of ``column`` (a Lead timestamp); NULLs are left out."""
    week = week_start(column, _dialect(session)).label("week")
    rows = await session.execute(
        select(week, func.count())
        .where(column.is_not(None), *cohort.lead_clauses(), *where)
        .group_by(week)
    )
    return {as_date(w): int(n) for w, n in rows.all()}


async def first_seen_by_week(session: AsyncSession, cohort: CohortFilter) -> dict[date, int]:
    return await weekly_counts(session, cohort, Lead.first_seen_at)


async def converted_by_week(session: AsyncSession, cohort: CohortFilter) -> dict[date, int]:
    return await weekly_counts(session, cohort, Lead.converted_at)


async def converted_by_first_seen_week(
    session: AsyncSession, cohort: CohortFilter
) -> dict[date, int]:
    """Of each week's new leads, how many have converted (by the cohort's rule)."""
    converted = cohort.lead_converted(_dialect(session))
    return await weekly_counts(session, cohort, Lead.first_seen_at, converted)


async def sources(session: AsyncSession) -> Sequence[FunnelSource]:
    rows = await session.execute(
        select(FunnelSource).order_by(FunnelSource.source_type, FunnelSource.name)
    )
    return rows.scalars().all()
