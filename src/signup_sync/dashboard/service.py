"""What the dashboard shows, in one read: funnel, groups, weeks, days to convert, sources."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import Bucket, FunnelMetrics, GroupBy, TimeToConvert
from signup_sync.analytics.service import DEFAULT_MODEL, credits_by_model, funnel_metrics
from signup_sync.analytics.time_to_convert import time_to_convert
from signup_sync.attribution.models import AttributionModel
from signup_sync.dashboard import repository
from signup_sync.leads.schemas import LeadFilter, stage_name
from signup_sync.vocabulary import PULLED_SOURCE_TYPES

# The group-by selector: every group_by of /analytics/funnel-metrics, with its label.
GROUP_LABELS: dict[GroupBy, str] = {
    GroupBy.SOURCE_TYPE: "Source",
    GroupBy.CHANNEL: "Channel",
    GroupBy.UTM_SOURCE: "UTM source",
    GroupBy.UTM_MEDIUM: "UTM medium",
    GroupBy.UTM_CAMPAIGN: "UTM campaign",
    GroupBy.EVENT: "Webinar, event or service",
    GroupBy.COHORT_MONTH: "First-seen month",
}
GROUP_BY_OPTIONS: tuple[tuple[str, str], ...] = tuple(
    (g.value, GROUP_LABELS.get(g, g.value)) for g in GroupBy
)

# The attribution model selector: every model of funnel-metrics' ``model``.
MODEL_LABELS: dict[AttributionModel, str] = {
    AttributionModel.FIRST_TOUCH: "First touch",
    AttributionModel.LAST_TOUCH: "Last touch",
    AttributionModel.LAST_NON_DIRECT: "Last non-direct touch",
    AttributionModel.LINEAR: "Linear",
    AttributionModel.TIME_DECAY: "Time decay",
    AttributionModel.POSITION_BASED: "Position based (40/20/40)",
}
MODEL_OPTIONS: tuple[tuple[str, str], ...] = tuple(
    (m.value, MODEL_LABELS.get(m, m.value)) for m in AttributionModel
)

MAX_WEEKS = 104


@dataclass(frozen=True, slots=True)
class WeekPoint:
    start: date
    leads: int  # first seen this week
    conversions: int  # first converted this week
    converted_of_new: int = 0  # of this week's new leads, converted by now

    @property
    def conversion_rate(self) -> float | None:
        """The share of this week's new leads that converted (None without new leads)."""
        return self.converted_of_new / self.leads if self.leads else None


@dataclass(frozen=True, slots=True)
class Weeks:
    points: list[WeekPoint]
    cut_weeks: int = 0  # older weeks of the period left out (at most MAX_WEEKS are shown)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source_type: str
    name: str | None
    is_active: bool | None
    last_sync_at: datetime | None
    last_sync_status: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """A headline number against the same window one period earlier."""

    now: float
    before: float

    @property
    def delta(self) -> float:
        return self.now - self.before

    @property
    def relative(self) -> float | None:
        return self.delta / self.before if self.before else None


@dataclass(frozen=True, slots=True)
class Comparison:
    start: datetime
    end: datetime
    leads: Change
    conversions: Change
    conversion_rate: Change


@dataclass(frozen=True, slots=True)
class Dashboard:
    metrics: FunnelMetrics
    weeks: Weeks
    by_model: dict[AttributionModel, dict[str | None, float]]
    previous: Comparison | None
    time_to_convert: TimeToConvert
    sources: list[SourceStatus]


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def fill_weeks(
    leads: dict[date, int],
    conversions: dict[date, int],
    start: datetime | None = None,
    end: datetime | None = None,
    converted_of_new: dict[date, int] | None = None,
) -> Weeks:
    """Every week from the first to the last (or the cohort's bounds), empty weeks as zeros.

    At most ``MAX_WEEKS`` (the latest); ``cut_weeks`` says how many older ones were left out.
    """
    known = sorted({*leads, *conversions})
    first = monday(start.date()) if start else (known[0] if known else None)
    last = (
        monday((end - timedelta(microseconds=1)).date()) if end else (known[-1] if known else None)
    )
    if first is None or last is None or first > last:
        return Weeks([])
    shown_from = max(first, last - timedelta(weeks=MAX_WEEKS - 1))
    cut = (shown_from - first).days // 7
    converted = converted_of_new or {}
    points = []
    week = shown_from
    while week <= last:
        points.append(
            WeekPoint(week, leads.get(week, 0), conversions.get(week, 0), converted.get(week, 0))
        )
        week += timedelta(weeks=1)
    return Weeks(points, cut)


def bucket_label(bucket: Bucket) -> str:
    """``[3, 7)`` -> ``"3-6"``; ``[0, 1)`` -> ``"same day"``; ``[90, None)`` -> ``"90+"``."""
    low, high = bucket.from_days, bucket.to_days
    if high is None:
        return f"{low}+"
    if high - low == 1:
        return "same day" if low == 0 else str(low)
    return f"{low}-{high - 1}"


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


async def dashboard(
    session: AsyncSession,
    cohort: CohortFilter,
    group_by: GroupBy,
    model: AttributionModel = DEFAULT_MODEL,
) -> Dashboard:
    """Everything on the page; the numbers come from the analytics services the API serves."""
    metrics = await funnel_metrics(session, cohort, group_by, model)
    weeks = fill_weeks(
        await repository.first_seen_by_week(session, cohort),
        await repository.converted_by_week(session, cohort),
        cohort.start,
        cohort.end,
        await repository.converted_by_first_seen_week(session, cohort),
    )
    return Dashboard(
        metrics=metrics,
        weeks=weeks,
        by_model=await credits_by_model(session, cohort, group_by),
        previous=await _previous_period(session, cohort, metrics),
        time_to_convert=await time_to_convert(session, cohort),
        sources=await source_statuses(session),
    )


async def _previous_period(
    session: AsyncSession, cohort: CohortFilter, now: FunnelMetrics
) -> Comparison | None:
    """The same window one period earlier; None without both ends of a window."""
    if cohort.start is None or cohort.end is None:
        return None
    length = cohort.end - cohort.start
    earlier = replace(cohort, start=cohort.start - length, end=cohort.start)
    before = await funnel_metrics(session, earlier, GroupBy.SOURCE_TYPE)
    return Comparison(
        start=earlier.start or cohort.start,
        end=cohort.start,
        leads=Change(now.total_leads, before.total_leads),
        conversions=Change(now.total_conversions, before.total_conversions),
        conversion_rate=Change(now.conversion_rate, before.conversion_rate),
    )


def describe(f: LeadFilter) -> str:
    """The filters in words, for the heading of a list of people."""
    parts = []
    if f.min_stage is not None:
        parts.append(f"reached stage {f.min_stage} ({stage_name(f.min_stage)})")
    if f.stage is not None:
        parts.append(f"stopped at stage {f.stage} ({stage_name(f.stage)})")
    for name, value in (
        ("source", f.source_type),
        ("channel", f.channel),
        ("UTM source", f.utm_source),
        ("UTM medium", f.utm_medium),
        ("campaign", f.utm_campaign),
        ("item", f.item),
    ):
        if value is not None:
            parts.append(f"first-touch {name} {value}")
    if f.cohort_month:
        parts.append(f"first seen in {f.cohort_month}")
    if f.start:
        parts.append(f"first seen from {f.start.date().isoformat()}")
    if f.end:
        parts.append(f"first seen before {f.end.date().isoformat()}")
    return ", ".join(parts)
