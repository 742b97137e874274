"""Queries over conversions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def add_credits(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store a conversion's per-model credits in one round trip."""
    if rows:
        await session.execute(cast(Table, AttributionCredit.__table__).insert(), list(rows))
