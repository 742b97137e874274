"""Funnel metrics from per-day rollups (PostgreSQL): no scan of leads or events per request.

Triggers (migration 0007) mark the UTC days each write touches; ``refresh`` recomputes
those days from the base tables and must run in a committing unit of work (the API and
the dashboard call it before reading). ``usable`` says whether a cohort can be answered
here: PostgreSQL, whole-day bounds, no conversion window, and no day in range waiting for a
refresh. Otherwise the live queries (analytics.repository, analytics.attributed) answer,
with the same definitions; tests/test_rollups.py holds the two to the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.attributed import Attributed, Totals, by_group_rows, money
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import GroupBy
from signup_sync.analytics.sql import dialect_of
from signup_sync.attribution.models import AttributionModel
from signup_sync.db.models import (
    rollup_conversions,
    rollup_credits,
    rollup_dirty,
    rollup_events,
    rollup_leads,
)
from signup_sync.vocabulary import Stage

_LOCK = 0x524F_4C4C  # one refresher at a time (any constant shared by every replica)
_DAY = "(d.day::timestamp AT TIME ZONE 'UTC')"
_IN_DAY = "{col} >= " + _DAY + " AND {col} < " + _DAY + " + interval '1 day'"
_DAYS = "unnest(CAST(:days AS date[])) AS d(day)"

_REFRESH = (
    f"""INSERT INTO funnel_rollup_leads (day, source_type, channel, utm_source, utm_medium,
        utm_campaign, item, item_name, stage, leads)
    SELECT d.day, l.first_touch_source_type, l.first_touch_channel, l.first_touch_utm_source,
        l.first_touch_utm_medium, l.first_touch_utm_campaign, l.first_touch_item,
        l.first_touch_item_name, l.stage, count(*)
    FROM {_DAYS} JOIN funnel_leads l ON {_IN_DAY.format(col="l.first_seen_at")}
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9""",
    f"""INSERT INTO funnel_rollup_events (day, event_type, source_type, utm_campaign, events)
    SELECT d.day, e.event_type, e.source_type, e.utm_campaign, count(*)
    FROM {_DAYS} JOIN funnel_events e ON {_IN_DAY.format(col="e.occurred_at")}
    WHERE e.status = 'active'
    GROUP BY 1, 2, 3, 4""",
    f"""INSERT INTO funnel_rollup_credits (day, lead_source_type, lead_utm_campaign,
        conversion_type, model, source_type, channel, utm_source, utm_medium, utm_campaign,
        item, item_name, micros, cents)
    SELECT d.day, l.first_touch_source_type, l.first_touch_utm_campaign, c.conversion_type,
        a.model, a.source_type, a.channel, a.utm_source, a.utm_medium, a.utm_campaign,
        a.item, a.item_name, sum(a.credit_micros), sum(a.value_cents)
    FROM {_DAYS} JOIN funnel_leads l ON {_IN_DAY.format(col="l.first_seen_at")}
    JOIN funnel_attribution_credits a ON a.lead_id = l.id
    JOIN funnel_conversions c ON c.id = a.conversion_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12""",
    # A conversion has credit rows under every model or under none (credits per model sum
    # to the whole; none without touchpoints): one "credited" flag serves every model.
    f"""INSERT INTO funnel_rollup_conversions (day, lead_source_type, lead_utm_campaign,
        conversion_type, credited, days_to_conversion, conversions, value)
    SELECT d.day, l.first_touch_source_type, l.first_touch_utm_campaign, c.conversion_type,
        EXISTS (SELECT 1 FROM funnel_attribution_credits a WHERE a.conversion_id = c.id),
        c.days_to_conversion, count(*), sum(c.value)
    FROM {_DAYS} JOIN funnel_leads l ON {_IN_DAY.format(col="l.first_seen_at")}
    JOIN funnel_conversions c ON c.lead_id = l.id
    GROUP BY 1, 2, 3, 4, 5, 6""",
)
ROLLUPS: tuple[Table, ...] = (rollup_leads, rollup_events, rollup_credits, rollup_conversions)


async def refresh(session: AsyncSession) -> int:
    """Recompute the days marked dirty; returns how many. Does not commit."""
    if dialect_of(session) != "postgresql":
        return 0
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    found = await session.execute(delete(rollup_dirty).returning(rollup_dirty.c.day))
    days = sorted(found.scalars().all())
    if not days:
        return 0
    for table in ROLLUPS:
        await session.execute(delete(table).where(table.c.day.in_(days)))
    for statement in _REFRESH:
        await session.execute(text(statement), {"days": days})
    return len(days)


def _whole_day(moment: datetime | None) -> bool:
    if moment is None:
        return True
    utc = moment.astimezone(UTC)
    return (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0)


def _day(moment: datetime | None) -> date | None:
    return moment.astimezone(UTC).date() if moment is not None else None


def _range(table: Table, cohort: CohortFilter) -> list[ColumnElement[bool]]:
    clauses = []
    if (start := _day(cohort.start)) is not None:
        clauses.append(table.c.day >= start)
    if (end := _day(cohort.end)) is not None:
        clauses.append(table.c.day < end)
    return clauses


async def usable(session: AsyncSession, cohort: CohortFilter) -> bool:
    """Whether the rollups answer this cohort exactly (see the module docstring)."""
    if dialect_of(session) != "postgresql" or cohort.conversion_window_days is not None:
        return False
    if not (_whole_day(cohort.start) and _whole_day(cohort.end)):
        return False
    pending = select(rollup_dirty.c.day).where(*_range(rollup_dirty, cohort)).limit(1)
    return (await session.execute(pending)).first() is None


def _lead_filters(cohort: CohortFilter) -> list[ColumnElement[bool]]:
    t = rollup_leads.c
    clauses = _range(rollup_leads, cohort)
    if cohort.source_type is not None:
        clauses.append(t.source_type == cohort.source_type)
    if cohort.utm_campaign is not None:
        clauses.append(t.utm_campaign == cohort.utm_campaign)
    return clauses


def _by_lead(table: Table, cohort: CohortFilter) -> list[ColumnElement[bool]]:
    """Filters of a rollup keyed by the converting lead's cohort (credits, conversions)."""
    clauses = _range(table, cohort)
    if cohort.source_type is not None:
        clauses.append(table.c.lead_source_type == cohort.source_type)
    if cohort.utm_campaign is not None:
        clauses.append(table.c.lead_utm_campaign == cohort.utm_campaign)
    return clauses


def _leads_at(stage: int) -> Any:
    t = rollup_leads.c
    return func.coalesce(func.sum(case((t.stage >= stage, t.leads), else_=0)), 0)


async def stage_counts(session: AsyncSession, cohort: CohortFilter) -> list[int]:
    query = select(*(_leads_at(int(s)) for s in Stage)).where(*_lead_filters(cohort))
    row = (await session.execute(query)).one()
    return [int(v or 0) for v in row]


def _key(table: Table, group_by: GroupBy) -> tuple[Any, Any]:
    """Group key and label columns of a rollup (leads: first touch; credits: the touch)."""
    c = table.c
    if group_by is GroupBy.COHORT_MONTH:
        return func.to_char(c.day, "YYYY-MM"), None
    if group_by is GroupBy.EVENT:
        return c.item, c.item_name
    return c[group_by.value], None


async def groups(session: AsyncSession, cohort: CohortFilter, group_by: GroupBy) -> list[Any]:
    key, label = _key(rollup_leads, group_by)
    leads = _leads_at(int(Stage.LEAD))
    query = (
        select(
            key.label("grp"),
            *([func.max(label).label("label")] if label is not None else []),
            leads.label("leads"),
            _leads_at(int(Stage.CONVERTED)).label("conversions"),
        )
        .where(*_lead_filters(cohort))
        .group_by(key)
        .having(leads > 0)
    )
    return list((await session.execute(query)).all())


async def event_counts(session: AsyncSession, cohort: CohortFilter) -> dict[str, int]:
    t = rollup_events.c
    clauses = _range(rollup_events, cohort)
    if cohort.source_type is not None:
        clauses.append(t.source_type == cohort.source_type)
    if cohort.utm_campaign is not None:
        clauses.append(t.utm_campaign == cohort.utm_campaign)
    query = select(t.event_type, func.sum(t.events)).where(*clauses).group_by(t.event_type)
    return {event_type: int(n) for event_type, n in (await session.execute(query)).all()}


async def by_group(
    session: AsyncSession,
    cohort: CohortFilter,
    group_by: GroupBy,
    model: AttributionModel,
    conversion_type: str | None = None,
) -> dict[Any, Attributed]:
    t = rollup_credits
    key, label = _key(t, group_by)
    clauses = [*_by_lead(t, cohort), t.c.model == model.value]
    if conversion_type is not None:
        clauses.append(t.c.conversion_type == conversion_type)
    query = (
        select(
            key.label("grp"),
            func.sum(t.c.micros).label("micros"),
            func.sum(t.c.cents).label("cents"),
            *([func.max(label).label("label")] if label is not None else []),
        )
        .where(*clauses)
        .group_by(key)
    )
    return by_group_rows((await session.execute(query)).all(), labelled=label is not None)


async def totals(
    session: AsyncSession,
    cohort: CohortFilter,
    model: AttributionModel,
    conversion_type: str | None = None,
) -> Totals:
    t = rollup_conversions.c
    clauses = _by_lead(rollup_conversions, cohort)  # "credited" holds for every model
    if conversion_type is not None:
        clauses.append(t.conversion_type == conversion_type)
    query = select(
        func.sum(t.conversions),
        func.sum(t.value),
        func.sum(case((~t.credited, t.conversions), else_=0)),
        func.sum(case((~t.credited, t.value), else_=None)),
    ).where(*clauses)
    count, value, none_count, none_value = (await session.execute(query)).one()
    return Totals(
        conversions=int(count or 0),
        value=money(value),
        unattributed_conversions=int(none_count or 0),
        unattributed_value=money(none_value),
    )


async def median_days_to_conversion(session: AsyncSession, cohort: CohortFilter) -> float | None:
    t = rollup_conversions.c
    query = (
        select(t.days_to_conversion, func.sum(t.conversions))
        .where(*_by_lead(rollup_conversions, cohort), t.days_to_conversion.is_not(None))
        .group_by(t.days_to_conversion)
        .order_by(t.days_to_conversion)
    )
    counts = [(int(days), int(n)) for days, n in (await session.execute(query)).all()]
    return weighted_median(counts)


def weighted_median(counts: Sequence[tuple[int, int]]) -> float | None:
    """Median of values given as sorted (value, how many) pairs: the middle one or two."""
    total = sum(n for _, n in counts)
    if not total:
        return None
    wanted = [(total - 1) // 2, total // 2]  # 0-based positions of the middle value(s)
    found: list[int] = []
    seen = 0
    for value, n in counts:
        while len(found) < 2 and seen <= wanted[len(found)] < seen + n:
            found.append(value)
        seen += n
    return float(sum(found)) / len(found)
