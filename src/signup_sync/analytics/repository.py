"""Funnel queries: built from per-lead state, never by scanning people out of events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead
from signup_sync.vocabulary import Stage

GROUP_COLUMNS = {
    "source_type": Lead.first_touch_source_type,
    "utm_source": Lead.first_touch_utm_source,
    "utm_campaign": Lead.first_touch_utm_campaign,
}


@dataclass(frozen=True, slots=True)
class CohortFilter:
    """The cohort: leads whose first touch falls in [start, end) and matches the filters."""

    start: datetime | None = None
    end: datetime | None = None
    source_type: str | None = None
    utm_campaign: str | None = None

    def lead_clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.start is not None:
            clauses.append(Lead.first_seen_at >= self.start)
        if self.end is not None:
            clauses.append(Lead.first_seen_at < self.end)
        if self.source_type is not None:
            clauses.append(Lead.first_touch_source_type == self.source_type)
        if self.utm_campaign is not None:
            clauses.append(Lead.first_touch_utm_campaign == self.utm_campaign)
        return clauses

    def event_clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.start is not None:
            clauses.append(FunnelEvent.occurred_at >= self.start)
        if self.end is not None:
            clauses.append(FunnelEvent.occurred_at < self.end)
        if self.source_type is not None:
            clauses.append(FunnelEvent.source_type == self.source_type)
        if self.utm_campaign is not None:
            clauses.append(FunnelEvent.utm_campaign == self.utm_campaign)
        return clauses


def _reached(stage: int) -> Any:
    return func.coalesce(func.sum(case((Lead.stage >= stage, 1), else_=0)), 0)


def stage_counts_query(cohort: CohortFilter) -> Select[Any]:
    """One row: how many cohort leads reached at least each stage (stage 1 = all of them)."""
    return select(*(_reached(int(s)).label(f"s{int(s)}") for s in Stage)).where(
        *cohort.lead_clauses()
    )


def groups_query(cohort: CohortFilter, group_by: str) -> Select[Any]:
    column = GROUP_COLUMNS[group_by]
    return (
        select(
            column.label("grp"),
            _reached(int(Stage.LEAD)).label("leads"),
            _reached(int(Stage.CONVERTED)).label("conversions"),
        )
        .where(*cohort.lead_clauses())
        .group_by(column)
        .having(_reached(int(Stage.LEAD)) > 0)
        .order_by(_reached(int(Stage.LEAD)).desc(), column)
    )


def event_counts_query(cohort: CohortFilter) -> Select[str, int]:
    return (
        select(FunnelEvent.event_type, func.count())
        .where(FunnelEvent.status == "active", *cohort.event_clauses())
        .group_by(FunnelEvent.event_type)
    )


def _conversion_days(cohort: CohortFilter) -> Select[Any]:
    return (
        select(FunnelConversion.days_to_conversion)
        .join(Lead, Lead.id == FunnelConversion.lead_id)
        .where(FunnelConversion.days_to_conversion.is_not(None), *cohort.lead_clauses())
    )


async def stage_counts(session: AsyncSession, cohort: CohortFilter) -> list[int]:
    row = (await session.execute(stage_counts_query(cohort))).one()
    return [int(v or 0) for v in row]


async def groups(session: AsyncSession, cohort: CohortFilter, group_by: str) -> list[Any]:
    return list((await session.execute(groups_query(cohort, group_by))).all())


async def event_counts(session: AsyncSession, cohort: CohortFilter) -> dict[str, int]:
    rows = await session.execute(event_counts_query(cohort))
    return {event_type: int(count) for event_type, count in rows.all()}


async def median_days_to_conversion(session: AsyncSession, cohort: CohortFilter) -> float | None:
    """Median by counting then reading the middle one or two rows: works on both dialects."""
    days = _conversion_days(cohort).subquery()
    n = (await session.execute(select(func.count()).select_from(days))).scalar_one()
    if not n:
        return None
    middle = (
        (
            await session.execute(
                select(days.c.days_to_conversion)
                .order_by(days.c.days_to_conversion)
                .offset((n - 1) // 2)
                .limit(2 if n % 2 == 0 else 1)
            )
        )
        .scalars()
        .all()
    )
    return float(sum(middle)) / len(middle)
