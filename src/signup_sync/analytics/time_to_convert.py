"""Time to convert: days from a lead's first touch to its conversion, as percentiles and a
histogram, overall and per group. Read from per-lead state (first_seen_at, converted_at)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.groups import dimension
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import (
    Bucket,
    Distribution,
    GroupBy,
    GroupDistribution,
    TimeToConvert,
    Window,
)
from signup_sync.analytics.sql import (
    SECONDS_PER_DAY,
    Percentiles,
    bucket_of,
    dialect_of,
    percentiles,
    seconds_between,
)
from signup_sync.db.models import Lead

DEFAULT_BINS = (1, 2, 3, 7, 14, 30, 60, 90)
PERCENTS = (50, 75, 90)


def days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / SECONDS_PER_DAY, 4)


def _histogram(bins: Sequence[int], counts: dict[int, int]) -> list[Bucket]:
    edges = [0, *bins]
    return [
        Bucket(
            from_days=edges[i],
            to_days=edges[i + 1] if i + 1 < len(edges) else None,
            leads=counts.get(i, 0),
        )
        for i in range(len(edges))
    ]


def _distribution(p: Percentiles | None, histogram: list[Bucket]) -> dict[str, Any]:
    values = p.values if p is not None else {}
    return {
        "converted_leads": p.n if p is not None else 0,
        "median_days": days(values.get(50)),
        "p75_days": days(values.get(75)),
        "p90_days": days(values.get(90)),
        "histogram": histogram,
    }


async def time_to_convert(
    session: AsyncSession,
    cohort: CohortFilter,
    group_by: GroupBy | None = None,
    bins: Sequence[int] = DEFAULT_BINS,
) -> TimeToConvert:
    dialect = dialect_of(session)
    seconds = seconds_between(Lead.converted_at, Lead.first_seen_at, dialect)
    where = [
        *cohort.lead_clauses(),
        Lead.converted_at.is_not(None),
        cohort.lead_converted(dialect),
    ]
    overall = (await percentiles(session, seconds, where, PERCENTS)).get(None)
    dim = dimension(group_by, dialect) if group_by is not None else None
    key = dim.lead_key if dim is not None else None
    bucket = bucket_of(seconds, bins)
    columns = [bucket.label("bucket"), func.count().label("n")]
    if key is not None:
        columns.insert(0, key.label("grp"))
    hist_stmt = select(*columns).where(*where).group_by(*([key] if key is not None else []), bucket)
    by_group: dict[Any, dict[int, int]] = {}
    for row in (await session.execute(hist_stmt)).all():
        grp = row.grp if key is not None else None
        by_group.setdefault(grp, {})[int(row.bucket)] = int(row.n)
    totals: dict[int, int] = {}
    for counts in by_group.values():
        for i, n in counts.items():
            totals[i] = totals.get(i, 0) + n

    groups: list[GroupDistribution] = []
    if dim is not None:
        per_group = await percentiles(
            session, seconds, where, PERCENTS, group=dim.lead_key, label=dim.lead_label
        )
        for grp, p in per_group.items():
            groups.append(
                GroupDistribution(
                    group=grp,
                    label=p.label,
                    **_distribution(p, _histogram(bins, by_group.get(grp, {}))),
                )
            )
        groups.sort(key=lambda g: (-g.converted_leads, g.group is None, g.group or ""))
    return TimeToConvert(
        overall=Distribution(**_distribution(overall, _histogram(bins, totals))),
        group_by=group_by,
        groups=groups,
        bins=list(bins),
        conversion_window_days=cohort.conversion_window_days,
        window=Window(start=cohort.start, end=cohort.end),
        filters=cohort.filters(),
    )
