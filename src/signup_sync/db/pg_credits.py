"""PostgreSQL fast path of storing a conversion's credits: one statement, built once.

As ``pg_ingest``: compiled for PostgreSQL once per process and run with
``exec_driver_sql``, the rows travelling as one array per column through ``unnest`` (with
ordinality, so ids follow the input order as an executemany's would). One prepared
statement whatever the row count, where a multi-row VALUES list was a new statement text
(parsed and planned again) for every count, and no per-row parameter processing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import AttributionCredit

# The statement builders of the ingestion fast path, shared within this package.
from signup_sync.db.pg_ingest import Compiled, _array_of, _sql

CREDITS = cast(Table, AttributionCredit.__table__)
# Columns with a value per row; the conversion and lead ids are one value for all rows.
ROW_COLUMNS = tuple(c.name for c in CREDITS.c if c.name not in ("id", "conversion_id", "lead_id"))


@cache
def _insert_sql() -> Compiled:
    arrays = [_array_of(CREDITS.c[name]) for name in ROW_COLUMNS]
    rows = func.unnest(*arrays).table_valued(*ROW_COLUMNS, with_ordinality="ord").render_derived()
    source = select(
        bindparam("conversion_id", type_=BigInteger()),
        bindparam("lead_id", type_=BigInteger()),
        *[rows.c[name] for name in ROW_COLUMNS],
    ).order_by(rows.c.ord)
    stmt = postgresql.insert(CREDITS).from_select(
        ["conversion_id", "lead_id", *ROW_COLUMNS], source
    )
    return _sql(stmt)


async def insert_credits(
    session: AsyncSession,
    conversion_id: int,
    lead_id: int,
    columns: Mapping[str, Sequence[Any]],
) -> None:
    """Insert credit rows given as one sequence per name in ``ROW_COLUMNS``."""
    statement = _insert_sql()
    values = {
        **statement.constants,
        "conversion_id": conversion_id,
        "lead_id": lead_id,
        **{name: list(columns[name]) for name in ROW_COLUMNS},
    }
    conn = await session.connection()
    await conn.exec_driver_sql(statement.sql, tuple(values[n] for n in statement.names))
