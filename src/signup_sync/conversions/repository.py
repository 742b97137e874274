"""Queries over conversions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.attribution.models import AttributionModel
from signup_sync.db import pg_conversions
from signup_sync.db.models import AttributionCredit, FunnelConversion, Lead
from signup_sync.db.pg_conversions import CONVERSION_COLUMNS


async def find_lead_and_conversion(
    session: AsyncSession, email: str, conversion_type: str
) -> tuple[int | None, FunnelConversion | None]:
    """The lead with this email and its conversion of this type, in one query."""
    row = (
        await session.execute(
            select(Lead.id, FunnelConversion)
            .outerjoin(
                FunnelConversion,
                (FunnelConversion.lead_id == Lead.id)
                & (FunnelConversion.conversion_type == conversion_type),
            )
            .where(Lead.email == email)
        )
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


async def add(
    session: AsyncSession,
    conversion: FunnelConversion,
    credits: Callable[[], Mapping[str, Sequence[Any]]],
) -> FunnelConversion:
    """Store a conversion and its per-model credit rows; ``credits()`` gives the rows as
    one sequence per column of funnel_attribution_credits but id, conversion_id and lead_id.

    PostgreSQL: one statement, the rows made from the conversion's attribution document
    (``pg_conversions``; ``credits`` is not called), the conversion left out of the
    session. Elsewhere: the conversion flushed, then the rows in one executemany.
    """
    if session.get_bind().dialect.name == "postgresql":
        values = {name: getattr(conversion, name) for name in CONVERSION_COLUMNS}
        conversion.id = await pg_conversions.insert_conversion_with_credits(
            session, values, [m.value for m in AttributionModel]
        )
        return conversion
    session.add(conversion)
    await session.flush()
    columns = credits()
    if any(columns.values()):
        names = ("conversion_id", "lead_id", *columns)
        rows = [
            dict(zip(names, (conversion.id, conversion.lead_id, *values), strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
        await session.execute(cast(Table, AttributionCredit.__table__).insert(), rows)
    return conversion
