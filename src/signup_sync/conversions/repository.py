"""Queries over conversions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db import pg_credits
from signup_sync.db.models import AttributionCredit, FunnelConversion, Lead


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


async def add(session: AsyncSession, conversion: FunnelConversion) -> FunnelConversion:
    session.add(conversion)
    await session.flush()
    return conversion


async def add_credits(
    session: AsyncSession,
    conversion_id: int,
    lead_id: int,
    columns: Mapping[str, Sequence[Any]],
) -> None:
    """Store a conversion's per-model credits in one statement; ``columns`` holds one
    sequence per column of funnel_attribution_credits but id, conversion_id and lead_id."""
    if not any(columns.values()):
        return
    if session.get_bind().dialect.name == "postgresql":
        await pg_credits.insert_credits(session, conversion_id, lead_id, columns)
        return
    names = ("conversion_id", "lead_id", *columns)
    rows = [
        dict(zip(names, (conversion_id, lead_id, *values), strict=True))
        for values in zip(*columns.values(), strict=True)
    ]
    await session.execute(cast(Table, AttributionCredit.__table__).insert(), rows)
