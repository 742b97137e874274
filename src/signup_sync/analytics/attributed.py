"""Attributed conversions and value per group, from the stored per-model credits.

A credit belongs to the group of the touchpoint that earned it (its channel, source type,
UTM value or item), or, for ``cohort_month``, to the converting lead's cohort month. Only
conversions of cohort leads count, inside the conversion window when one is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.groups import Dimension
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.sql import dialect_of
from signup_sync.attribution.models import CREDIT_UNITS, AttributionModel
from signup_sync.db.models import AttributionCredit, FunnelConversion, Lead

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Attributed:
    conversions: float
    value: Decimal
    label: str | None = None

    @classmethod
    def of_units(cls, micros: Any, cents: Any, label: str | None) -> Attributed:
        """From summed credit millionths and value cents (None when nothing was summed)."""
        return cls(
            conversions=round(int(micros or 0) / CREDIT_UNITS, 6),
            value=(Decimal(int(cents or 0)) / 100).quantize(CENT),
            label=label,
        )


@dataclass(frozen=True, slots=True)
class Totals:
    conversions: int
    value: Decimal
    unattributed_conversions: int
    unattributed_value: Decimal


def _conversion_clauses(
    cohort: CohortFilter, conversion_type: str | None, dialect: str
) -> list[ColumnElement[bool]]:
    clauses = [
        *cohort.lead_clauses(),
        *cohort.within_window(FunnelConversion.converted_at, dialect),
    ]
    if conversion_type is not None:
        clauses.append(FunnelConversion.conversion_type == conversion_type)
    return clauses


def money(raw: Any) -> Decimal:
    # SQLite sums NUMERIC as floats: back to cents.
    return Decimal(str(raw or 0)).quantize(CENT)


async def by_group(
    session: AsyncSession,
    cohort: CohortFilter,
    dim: Dimension,
    model: AttributionModel,
    conversion_type: str | None = None,
) -> dict[Any, Attributed]:
    c = AttributionCredit
    label = func.max(dim.credit_label) if dim.credit_label is not None else None
    stmt = (
        select(
            dim.credit_key.label("grp"),
            func.sum(c.credit_micros).label("micros"),
            func.sum(c.value_cents).label("cents"),
            *([label.label("label")] if label is not None else []),
        )
        .select_from(c)
        .join(FunnelConversion, FunnelConversion.id == c.conversion_id)
        .join(Lead, Lead.id == c.lead_id)
        .where(
            c.model == model.value,
            *_conversion_clauses(cohort, conversion_type, dialect_of(session)),
        )
        .group_by(dim.credit_key)
    )
    return by_group_rows((await session.execute(stmt)).all(), labelled=label is not None)


def by_group_rows(rows: Sequence[Any], *, labelled: bool) -> dict[Any, Attributed]:
    """``{grp: Attributed}`` from rows of (grp, micros, cents[, label]) sums."""
    return {
        row.grp: Attributed.of_units(row.micros, row.cents, row.label if labelled else None)
        for row in rows
    }


async def totals(
    session: AsyncSession,
    cohort: CohortFilter,
    model: AttributionModel,
    conversion_type: str | None = None,
) -> Totals:
    """All conversions of the cohort, and those with no credited touchpoint under ``model``."""
    credited = exists().where(
        AttributionCredit.conversion_id == FunnelConversion.id,
        AttributionCredit.model == model.value,
    )
    unattributed = ~credited
    stmt = (
        select(
            func.count(),
            func.sum(FunnelConversion.value),
            func.coalesce(func.sum(case((unattributed, 1), else_=0)), 0),
            func.sum(case((unattributed, FunnelConversion.value), else_=None)),
        )
        .select_from(FunnelConversion)
        .join(Lead, Lead.id == FunnelConversion.lead_id)
        .where(*_conversion_clauses(cohort, conversion_type, dialect_of(session)))
    )
    count, value, none_count, none_value = (await session.execute(stmt)).one()
    return Totals(
        conversions=int(count or 0),
        value=money(value),
        unattributed_conversions=int(none_count or 0),
        unattributed_value=money(none_value),
    )
