"""Dialect-aware SQL pieces shared by the analytics queries (SQLite and PostgreSQL).

Percentiles are computed in SQL with window functions (both dialects have them): each
group's values are numbered, and only the one or two rows around each wanted percentile
come back; the interpolation between them happens here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    SQLColumnExpression,
    case,
    cast,
    extract,
    func,
    null,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

SECONDS_PER_DAY = 86400


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    """Whole seconds from ``earlier`` to ``later`` (exact integers on SQLite)."""
    if dialect == "postgresql":
        return extract("epoch", later - earlier)
    return cast(func.strftime("%s", later), Integer) - cast(func.strftime("%s", earlier), Integer)


def month_of(moment: Any, dialect: str) -> ColumnElement[Any]:
    """``YYYY-MM`` of a UTC time."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM")
    return func.strftime("%Y-%m", moment)


@dataclass(slots=True)
class Percentiles:
    n: int = 0
    label: str | None = None
    values: dict[int, float] = field(default_factory=dict)  # percent -> value


def _positions(n: int, percent: int) -> tuple[int, int, Fraction]:
    """0-based indexes around the percentile and the weight of the upper one."""
    h = Fraction((n - 1) * percent, 100)
    low = (n - 1) * percent // 100
    high = -(-(n - 1) * percent // 100)
    return low, high, h - low


async def percentiles(
    session: AsyncSession,
    value: ColumnElement[Any],
    where: Sequence[ColumnElement[bool]],
    percents: Sequence[int],
    group: SQLColumnExpression[Any] | None = None,
    label: SQLColumnExpression[Any] | None = None,
    select_from: Any = None,
) -> dict[Any, Percentiles]:
    """Per group (or overall, key None): count and linear-interpolated percentiles.

    Interpolation as PostgreSQL's percentile_cont: position h = (n - 1) * p / 100 in the
    sorted values, between the values at floor(h) and ceil(h).
    """
    partition = [group] if group is not None else None
    grp = group if group is not None else null()
    lab = func.max(label).over(partition_by=partition) if label is not None else null()
    inner = select(
        grp.label("grp"),
        lab.label("lab"),
        value.label("v"),
        func.row_number().over(partition_by=partition, order_by=value).label("rn"),
        func.count().over(partition_by=partition).label("n"),
    )
    if select_from is not None:
        inner = inner.select_from(select_from)
    numbered = inner.where(*where).subquery()
    n1 = numbered.c.n - 1
    wanted = []
    for p in percents:
        wanted.append(numbered.c.rn == n1 * p // 100 + 1)
        wanted.append(numbered.c.rn == (n1 * p + 99) // 100 + 1)
    rows = await session.execute(
        select(numbered.c.grp, numbered.c.lab, numbered.c.n, numbered.c.rn, numbered.c.v).where(
            or_(*wanted)
        )
    )
    found: dict[Any, tuple[int, str | None, dict[int, float]]] = {}
    for grp_value, lab_value, n, rn, v in rows.all():
        entry = found.setdefault(grp_value, (int(n), lab_value, {}))
        entry[2][int(rn) - 1] = float(v)
    out: dict[Any, Percentiles] = {}
    for key, (n, lab_value, at) in found.items():
        result = Percentiles(n=n, label=lab_value)
        for p in percents:
            low, high, weight = _positions(n, p)
            result.values[p] = float(at[low] + (at[high] - at[low]) * float(weight))
        out[key] = result
    return out


def bucket_of(seconds: ColumnElement[Any], edges_days: Sequence[int]) -> ColumnElement[int]:
    """Index of the histogram bucket: 0 below the first edge, len(edges) at or past the last."""
    whens = [(seconds < edge * SECONDS_PER_DAY, i) for i, edge in enumerate(edges_days)]
    return case(*whens, else_=len(edges_days))
