"""Queries over funnel events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db import pg_ingest
from signup_sync.db.bulk import existing_events_clause
from signup_sync.db.models import FunnelEvent, Lead


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    lead_id: int
    source_type: str
    event_type: str
    stage: int
    status: str
    occurred_at: datetime
    created_at: datetime
    external_id: str | None
    idempotency_key: str | None
    email: str | None

    @property
    def external_key(self) -> tuple[str, str, str] | None:
        if self.external_id is None:
            return None
        return (self.source_type, self.external_id, self.event_type)


async def find_existing(
    session: AsyncSession,
    external_keys: Sequence[tuple[str, str, str]],
    idempotency_keys: Sequence[str],
) -> list[StoredEvent]:
    """Events already stored under any of these external keys or Idempotency-Keys."""
    if session.get_bind().dialect.name == "postgresql":
        found = await pg_ingest.find_existing(session, external_keys, idempotency_keys)
        return [StoredEvent(*row) for row in found]
    where = existing_events_clause(external_keys, idempotency_keys)
    if where is None:
        return []
    rows = await session.execute(
        select(
            FunnelEvent.id,
            FunnelEvent.lead_id,
            FunnelEvent.source_type,
            FunnelEvent.event_type,
            FunnelEvent.stage,
            FunnelEvent.status,
            FunnelEvent.occurred_at,
            FunnelEvent.created_at,
            FunnelEvent.external_id,
            FunnelEvent.idempotency_key,
            Lead.email,
        )
        .join(Lead, Lead.id == FunnelEvent.lead_id)
        .where(where)
    )
    return [StoredEvent(**row._mapping) for row in rows.all()]


# What attribution reads of a touchpoint (``conversions.service``), in this order.
TOUCHPOINT_COLUMNS = (
    FunnelEvent.id,
    FunnelEvent.source_type,
    FunnelEvent.event_type,
    FunnelEvent.occurred_at,
    FunnelEvent.utm_source,
    FunnelEvent.utm_medium,
    FunnelEvent.utm_campaign,
    FunnelEvent.utm_term,
    FunnelEvent.utm_content,
    FunnelEvent.channel,
    FunnelEvent.event_metadata,
)


async def touchpoints(
    session: AsyncSession, lead_id: int, since: datetime, until: datetime, exclude_type: str
) -> Sequence[Row[Any]]:
    """A lead's events in [since, until], oldest first, ties broken by id (arrival order):
    rows of ``TOUCHPOINT_COLUMNS`` (plain rows: no ORM objects to build and track)."""
    result = await session.execute(
        select(*TOUCHPOINT_COLUMNS)
        .where(
            FunnelEvent.lead_id == lead_id,
            FunnelEvent.occurred_at >= since,
            FunnelEvent.occurred_at <= until,
            FunnelEvent.event_type != exclude_type,
        )
        .order_by(FunnelEvent.occurred_at, FunnelEvent.id)
    )
    return result.all()
