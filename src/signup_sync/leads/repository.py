"""Queries over leads: filtered keyset pages, one lead, one lead's timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead
from signup_sync.leads.schemas import NONE_VALUE, LeadFilter, LeadSort

# Text sorts treat a missing value as "" so that keyset comparisons never meet a NULL.
SORT_COLUMNS: dict[str, Any] = {
    "first_seen_at": Lead.first_seen_at,
    "last_seen_at": Lead.last_seen_at,
    "stage": Lead.stage,
    "email": func.coalesce(Lead.email, Lead.phone, ""),
    "name": func.coalesce(Lead.last_name, "") + " " + func.coalesce(Lead.first_name, ""),
    "first_touch_source_type": func.coalesce(Lead.first_touch_source_type, ""),
    "first_touch_channel": func.coalesce(Lead.first_touch_channel, ""),
    "first_touch_utm_campaign": func.coalesce(Lead.first_touch_utm_campaign, ""),
}


def _first_touch(column: InstrumentedAttribute[str | None], value: str) -> ColumnElement[bool]:
    return column.is_(None) if value == NONE_VALUE else column == value


def _month(value: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def lead_clauses(f: LeadFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.min_stage is not None:
        clauses.append(Lead.stage >= f.min_stage)
    if f.stage is not None:
        clauses.append(Lead.stage == f.stage)
    for column, value in (
        (Lead.first_touch_source_type, f.source_type),
        (Lead.first_touch_channel, f.channel),
        (Lead.first_touch_utm_source, f.utm_source),
        (Lead.first_touch_utm_medium, f.utm_medium),
        (Lead.first_touch_utm_campaign, f.utm_campaign),
        (Lead.first_touch_item, f.item),
    ):
        if value is not None:
            clauses.append(_first_touch(column, value))
    if f.cohort_month is not None:
        # A range on first_seen_at (not its formatted month) keeps the index usable.
        month_start, month_end = _month(f.cohort_month)
        clauses += [Lead.first_seen_at >= month_start, Lead.first_seen_at < month_end]
    if f.start is not None:
        clauses.append(Lead.first_seen_at >= f.start)
    if f.end is not None:
        clauses.append(Lead.first_seen_at < f.end)
    return clauses


def sort_value(sort: LeadSort) -> Any:
    """The SQL expression a sort orders by (read back with each row for the cursor)."""
    return SORT_COLUMNS[sort.key]


def after_clause(
    sort: LeadSort, key: Any, last_id: int, *, backwards: bool = False
) -> ColumnElement[bool]:
    """Rows strictly after (key, id) in the sort's order (before it, going backwards)."""
    column = SORT_COLUMNS[sort.key]
    if sort.descending != backwards:
        return or_(column < key, and_(column == key, Lead.id < last_id))
    return or_(column > key, and_(column == key, Lead.id > last_id))


def leads_query(
    f: LeadFilter,
    sort: LeadSort,
    after: tuple[Any, int] | None,
    limit: int,
    *,
    backwards: bool = False,
) -> Select[tuple[Lead, Any]]:
    """A keyset page; ``backwards`` reads the rows before ``after``, nearest first."""
    column = SORT_COLUMNS[sort.key]
    descending = sort.descending != backwards
    order = (column.desc(), Lead.id.desc()) if descending else (column.asc(), Lead.id.asc())
    clauses = lead_clauses(f)
    if after is not None:
        clauses.append(after_clause(sort, *after, backwards=backwards))
    return select(Lead, column.label("sort_key")).where(*clauses).order_by(*order).limit(limit)


async def page(
    session: AsyncSession,
    f: LeadFilter,
    sort: LeadSort,
    after: tuple[Any, int] | None,
    limit: int,
    *,
    backwards: bool = False,
) -> Sequence[tuple[Lead, Any]]:
    """(lead, its sort key) pairs."""
    query = leads_query(f, sort, after, limit, backwards=backwards)
    return [(row.Lead, row.sort_key) for row in await session.execute(query)]


async def count(session: AsyncSession, f: LeadFilter) -> int:
    return int(
        (await session.execute(select(func.count(Lead.id)).where(*lead_clauses(f)))).scalar_one()
    )


async def get(session: AsyncSession, lead_id: int) -> Lead | None:
    return await session.get(Lead, lead_id)


async def events_of(session: AsyncSession, lead_id: int) -> Sequence[FunnelEvent]:
    rows = await session.execute(
        select(FunnelEvent)
        .where(FunnelEvent.lead_id == lead_id)
        .order_by(FunnelEvent.occurred_at, FunnelEvent.id)
    )
    return rows.scalars().all()


async def conversions_of(session: AsyncSession, lead_id: int) -> Sequence[FunnelConversion]:
    rows = await session.execute(
        select(FunnelConversion)
        .where(FunnelConversion.lead_id == lead_id)
        .order_by(FunnelConversion.converted_at, FunnelConversion.id)
    )
    return rows.scalars().all()


async def delete_by_email_suffix(session: AsyncSession, suffix: str) -> int:
    """Remove the leads whose email ends with ``suffix``; their events and conversions follow."""
    pattern = "%" + suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result = await session.execute(delete(Lead).where(Lead.email.like(pattern, escape="\\")))
    return int(getattr(result, "rowcount", 0) or 0)
