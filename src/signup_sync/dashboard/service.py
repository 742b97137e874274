"""What the dashboard shows, in one read: funnel, groups, weeks, days to convert, sources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import FunnelMetrics, GroupBy
from signup_sync.analytics.service import funnel_metrics
from signup_sync.dashboard import repository
from signup_sync.leads.schemas import LeadFilter, stage_name
from signup_sync.vocabulary import PULLED_SOURCE_TYPES

# The group-by selector's options, in order: (value of funnel-metrics' group_by, label).
GROUP_BY_OPTIONS: tuple[tuple[str, str], ...] = (
    ("source_type", "Source"),
    ("utm_source", "UTM source"),
    ("utm_campaign", "UTM campaign"),
)

# Days-to-convert histogram buckets: (lowest day, highest day or None for open-ended, label).
DAY_BUCKETS: tuple[tuple[int, int | None, str], ...] = (
    (0, 0, "same day"),
    (1, 1, "1 day"),
    (2, 3, "2-3"),
    (4, 7, "4-7"),
    (8, 14, "8-14"),
    (15, 30, "15-30"),
    (31, 60, "31-60"),
    (61, 90, "61-90"),
    (91, None, "91+"),
)

MAX_WEEKS = 104


@dataclass(frozen=True, slots=True)
class WeekPoint:
    start: date
    leads: int
    conversions: int


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    low: int
    high: int | None
    count: int


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source_type: str
    name: str | None
    is_active: bool | None
    last_sync_at: datetime | None
    last_sync_status: str | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    metrics: FunnelMetrics
    weeks: list[WeekPoint]
    days_to_convert: list[Bucket]
    sources: list[SourceStatus]


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def fill_weeks(
    leads: dict[date, int],
    conversions: dict[date, int],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[WeekPoint]:
    """Every week from the first to the last (or the cohort's bounds), empty weeks as zeros."""
    known = sorted({*leads, *conversions})
    first = monday(start.date()) if start else (known[0] if known else None)
    last = (
        monday((end - timedelta(microseconds=1)).date()) if end else (known[-1] if known else None)
    )
    if first is None or last is None or first > last:
        return []
    first = max(first, last - timedelta(weeks=MAX_WEEKS - 1))
    weeks = []
    week = first
    while week <= last:
        weeks.append(WeekPoint(week, leads.get(week, 0), conversions.get(week, 0)))
        week += timedelta(weeks=1)
    return weeks


def bucket_days(counts: dict[int, int]) -> list[Bucket]:
    buckets = []
    for low, high, label in DAY_BUCKETS:
        n = sum(c for d, c in counts.items() if d >= low and (high is None or d <= high))
        buckets.append(Bucket(label=label, low=low, high=high, count=n))
    return buckets


async def source_statuses(session: AsyncSession) -> list[SourceStatus]:
    """Every configured source, plus each pulled source type that has none yet."""
    rows = await repository.sources(session)
    statuses = [
        SourceStatus(s.source_type, s.name, s.is_active, s.last_sync_at, s.last_sync_status)
        for s in rows
    ]
    configured = {s.source_type for s in rows}
    statuses += [
        SourceStatus(t.value, None, None, None, None)
        for t in PULLED_SOURCE_TYPES
        if t.value not in configured
    ]
    return statuses


async def dashboard(session: AsyncSession, cohort: CohortFilter, group_by: GroupBy) -> Dashboard:
    metrics = await funnel_metrics(session, cohort, group_by)
    weeks = fill_weeks(
        await repository.first_seen_by_week(session, cohort),
        await repository.converted_by_week(session, cohort),
        cohort.start,
        cohort.end,
    )
    days = bucket_days(await repository.days_to_conversion_counts(session, cohort))
    return Dashboard(
        metrics=metrics,
        weeks=weeks,
        days_to_convert=days,
        sources=await source_statuses(session),
    )


def describe(f: LeadFilter) -> str:
    """The filters in words, for the heading of a list of people."""
    parts = []
    if f.min_stage is not None:
        parts.append(f"reached stage {f.min_stage} ({stage_name(f.min_stage)})")
    if f.stage is not None:
        parts.append(f"stopped at stage {f.stage} ({stage_name(f.stage)})")
    if f.source_type:
        parts.append(f"first touch {f.source_type}")
    if f.utm_campaign:
        parts.append(f"campaign {f.utm_campaign}")
    if f.start:
        parts.append(f"first seen from {f.start.date().isoformat()}")
    if f.end:
        parts.append(f"first seen before {f.end.date().isoformat()}")
    return ", ".join(parts)
