"""Funnel metrics: definitions live here and in docs/analytics.md."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics import repository
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import FunnelMetrics, GroupBy, GroupCount, StageCount, Window
from signup_sync.vocabulary import EventType, Stage


def rate(numerator: int, denominator: int) -> float:
    """A fraction from 0 to 1; 0 on empty data rather than an error."""
    return round(numerator / denominator, 4) if denominator else 0.0


async def funnel_metrics(
    session: AsyncSession, cohort: CohortFilter, group_by: GroupBy
) -> FunnelMetrics:
    reached = await repository.stage_counts(session, cohort)
    total = reached[0]
    converted = reached[-1]
    stages = [
        StageCount(
            stage=int(stage),
            name=stage.label,
            leads=reached[i],
            rate_from_previous=rate(reached[i], reached[i - 1]) if i else rate(total, total),
            rate_from_start=rate(reached[i], total),
        )
        for i, stage in enumerate(Stage)
    ]
    group_rows = await repository.groups(session, cohort, group_by.value)
    counts = {t.value: 0 for t in EventType}
    counts.update(await repository.event_counts(session, cohort))
    filters = {
        k: v
        for k, v in (("source_type", cohort.source_type), ("utm_campaign", cohort.utm_campaign))
        if v is not None
    }
    return FunnelMetrics(
        total_leads=total,
        total_conversions=converted,
        conversion_rate=rate(converted, total),
        stages=stages,
        event_counts=counts,
        group_by=group_by,
        groups=[
            GroupCount(
                group=row.grp,
                leads=int(row.leads),
                conversions=int(row.conversions),
                conversion_rate=rate(int(row.conversions), int(row.leads)),
            )
            for row in group_rows
        ],
        median_days_to_conversion=await repository.median_days_to_conversion(session, cohort),
        window=Window(start=cohort.start, end=cohort.end),
        filters=filters,
    )
