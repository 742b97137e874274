"""Funnel metrics: definitions live here and in docs/analytics.md."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics import attributed, repository, rollup
from signup_sync.analytics.groups import dimension
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import (
    AttributionTotals,
    FunnelMetrics,
    GroupBy,
    GroupCount,
    StageCount,
    Window,
)
from signup_sync.analytics.sql import dialect_of
from signup_sync.attribution.models import AttributionModel
from signup_sync.vocabulary import EventType, Stage

DEFAULT_MODEL = AttributionModel.FIRST_TOUCH


def rate(numerator: int, denominator: int) -> float:
    """A fraction from 0 to 1; 0 on empty data rather than an error."""
    return round(numerator / denominator, 4) if denominator else 0.0


def group_sort_key(group: GroupCount) -> tuple[int, float, bool, str]:
    """Most leads first, then most attributed conversions, then by name (no group last)."""
    return (-group.leads, -group.attributed_conversions, group.group is None, group.group or "")


async def funnel_metrics(
    session: AsyncSession,
    cohort: CohortFilter,
    group_by: GroupBy,
    model: AttributionModel = DEFAULT_MODEL,
    conversion_type: str | None = None,
) -> FunnelMetrics:
    # Rollups when they answer this cohort exactly, else the live queries (same definitions).
    fast = await rollup.usable(session, cohort)
    reached = await (rollup if fast else repository).stage_counts(session, cohort)
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
    if fast:
        lead_rows = await rollup.groups(session, cohort, group_by)
        credit_groups = await rollup.by_group(session, cohort, group_by, model, conversion_type)
    else:
        dim = dimension(group_by, dialect_of(session))
        lead_rows = await repository.groups(session, cohort, dim)
        credit_groups = await attributed.by_group(session, cohort, dim, model, conversion_type)
    lead_groups = {row.grp: row for row in lead_rows}
    groups = []
    for key in lead_groups.keys() | credit_groups.keys():
        row = lead_groups.get(key)
        credit = credit_groups.get(key)
        leads = int(row.leads) if row is not None else 0
        conversions = int(row.conversions) if row is not None else 0
        label = getattr(row, "label", None) if row is not None else None
        groups.append(
            GroupCount(
                group=key,
                label=label or (credit.label if credit is not None else None),
                leads=leads,
                conversions=conversions,
                conversion_rate=rate(conversions, leads),
                attributed_conversions=credit.conversions if credit is not None else 0.0,
                attributed_value=credit.value if credit is not None else Decimal("0.00"),
            )
        )
    groups.sort(key=group_sort_key)
    counts = {t.value: 0 for t in EventType}
    counts.update(await (rollup if fast else repository).event_counts(session, cohort))
    sums = await (rollup if fast else attributed).totals(session, cohort, model, conversion_type)
    median = await (rollup if fast else repository).median_days_to_conversion(session, cohort)
    return FunnelMetrics(
        total_leads=total,
        total_conversions=converted,
        conversion_rate=rate(converted, total),
        stages=stages,
        event_counts=counts,
        group_by=group_by,
        groups=groups,
        median_days_to_conversion=median,
        conversion_window_days=cohort.conversion_window_days,
        attribution=AttributionTotals(
            model=model,
            conversion_type=conversion_type,
            conversions=sums.conversions,
            value=sums.value,
            unattributed_conversions=sums.unattributed_conversions,
            unattributed_value=sums.unattributed_value,
        ),
        window=Window(start=cohort.start, end=cohort.end),
        filters=cohort.filters(),
    )


async def credits_by_model(
    session: AsyncSession, cohort: CohortFilter, group_by: GroupBy
) -> dict[AttributionModel, dict[str | None, float]]:
    """Attributed conversions per group under every model (the models side by side)."""
    fast = await rollup.usable(session, cohort)
    dim = None if fast else dimension(group_by, dialect_of(session))
    out: dict[AttributionModel, dict[str | None, float]] = {}
    for model in AttributionModel:
        if dim is None:
            found = await rollup.by_group(session, cohort, group_by, model)
        else:
            found = await attributed.by_group(session, cohort, dim, model)
        out[model] = {key: credit.conversions for key, credit in found.items()}
    return out
