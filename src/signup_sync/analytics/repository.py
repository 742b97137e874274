"""Funnel queries: built from per-lead state, never by scanning people out of events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.groups import Dimension
from signup_sync.analytics.sql import SECONDS_PER_DAY, dialect_of, seconds_between
from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead
from signup_sync.vocabulary import Stage


@dataclass(frozen=True, slots=True)
class CohortFilter:
    """The cohort: leads whose first touch falls in [start, end) and matches the filters.

    ``conversion_window_days``: a lead (or a conversion) counts as converted only when it
    converted within that many days of the lead's first touch.
    """

    start: datetime | None = None
    end: datetime | None = None
    source_type: str | None = None
    utm_campaign: str | None = None
    conversion_window_days: int | None = None

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

    def within_window(self, converted_at: Any, dialect: str) -> list[ColumnElement[bool]]:
        """``converted_at`` (a lead's or a conversion's) is inside the conversion window."""
        if self.conversion_window_days is None:
            return []
        limit = self.conversion_window_days * SECONDS_PER_DAY
        return [seconds_between(converted_at, Lead.first_seen_at, dialect) <= limit]

    def lead_converted(self, dialect: str) -> ColumnElement[bool]:
        """A cohort lead counts as converted (stage 6, within the window if there is one)."""
        window = self.within_window(Lead.converted_at, dialect)
        if not window:
            return Lead.stage >= int(Stage.CONVERTED)
        return Lead.converted_at.is_not(None) & window[0]

    def filters(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("source_type", self.source_type), ("utm_campaign", self.utm_campaign))
            if v is not None
        }


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _reached(cohort: CohortFilter, stage: int, dialect: str) -> Any:
    if stage == int(Stage.CONVERTED):
        return _count(cohort.lead_converted(dialect))
    return _count(Lead.stage >= stage)


def stage_counts_query(cohort: CohortFilter, dialect: str) -> Select[Any]:
    """One row: how many cohort leads reached at least each stage (stage 1 = all of them)."""
    return select(*(_reached(cohort, int(s), dialect).label(f"s{int(s)}") for s in Stage)).where(
        *cohort.lead_clauses()
    )


def groups_query(cohort: CohortFilter, dim: Dimension, dialect: str) -> Select[Any]:
    leads = _reached(cohort, int(Stage.LEAD), dialect)
    label = func.max(dim.lead_label) if dim.lead_label is not None else None
    return (
        select(
            dim.lead_key.label("grp"),
            *([label.label("label")] if label is not None else []),
            leads.label("leads"),
            _reached(cohort, int(Stage.CONVERTED), dialect).label("conversions"),
        )
        .where(*cohort.lead_clauses())
        .group_by(dim.lead_key)
        .having(leads > 0)
    )


def event_counts_query(cohort: CohortFilter) -> Select[str, int]:
    return (
        select(FunnelEvent.event_type, func.count())
        .where(FunnelEvent.status == "active", *cohort.event_clauses())
        .group_by(FunnelEvent.event_type)
    )


def _conversion_days(cohort: CohortFilter, dialect: str) -> Select[Any]:
    return (
        select(FunnelConversion.days_to_conversion)
        .join(Lead, Lead.id == FunnelConversion.lead_id)
        .where(
            FunnelConversion.days_to_conversion.is_not(None),
            *cohort.lead_clauses(),
            *cohort.within_window(FunnelConversion.converted_at, dialect),
        )
    )


async def stage_counts(session: AsyncSession, cohort: CohortFilter) -> list[int]:
    row = (await session.execute(stage_counts_query(cohort, dialect_of(session)))).one()
    return [int(v or 0) for v in row]


async def groups(session: AsyncSession, cohort: CohortFilter, dim: Dimension) -> list[Any]:
    return list((await session.execute(groups_query(cohort, dim, dialect_of(session)))).all())


async def event_counts(session: AsyncSession, cohort: CohortFilter) -> dict[str, int]:
    rows = await session.execute(event_counts_query(cohort))
    return {event_type: int(count) for event_type, count in rows.all()}


async def median_days_to_conversion(session: AsyncSession, cohort: CohortFilter) -> float | None:
    """Median by counting then reading the middle one or two rows: works on both dialects."""
    days = _conversion_days(cohort, dialect_of(session)).subquery()
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
