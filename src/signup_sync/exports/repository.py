"""Export queries: one keyset batch (rows after an id, in id order) per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead
from signup_sync.leads.repository import lead_clauses
from signup_sync.leads.schemas import LeadFilter

LEAD_COLUMNS = (
    "id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "stage",
    "first_seen_at",
    "last_seen_at",
    "first_touch_source_type",
    "first_touch_channel",
    "first_touch_utm_source",
    "first_touch_utm_medium",
    "first_touch_utm_campaign",
    "converted_at",
)
EVENT_COLUMNS = (
    "id",
    "lead_id",
    "source_type",
    "event_type",
    "stage",
    "status",
    "occurred_at",
    "external_id",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
    "landing_page",
    "gclid",
    "fbclid",
    "msclkid",
    "created_at",
)
CONVERSION_COLUMNS = (
    "id",
    "lead_id",
    "user_id",
    "conversion_type",
    "value",
    "currency",
    "converted_at",
    "lookback_days",
    "first_touch_source_type",
    "first_touch_at",
    "last_touch_source_type",
    "last_touch_at",
    "days_to_conversion",
    "total_touchpoints",
)


def _leads(f: LeadFilter, after_id: int, limit: int) -> Select[Any]:
    columns = [getattr(Lead, name) for name in LEAD_COLUMNS]
    return (
        select(*columns).where(Lead.id > after_id, *lead_clauses(f)).order_by(Lead.id).limit(limit)
    )


def _events(f: LeadFilter, after_id: int, limit: int) -> Select[Any]:
    columns = [getattr(FunnelEvent, name) for name in EVENT_COLUMNS]
    return (
        select(*columns, Lead.email)
        .join(Lead, Lead.id == FunnelEvent.lead_id)
        .where(FunnelEvent.id > after_id, *lead_clauses(f))
        .order_by(FunnelEvent.id)
        .limit(limit)
    )


def _conversions(f: LeadFilter, after_id: int, limit: int) -> Select[Any]:
    columns = [getattr(FunnelConversion, name) for name in CONVERSION_COLUMNS]
    return (
        select(*columns, Lead.email)
        .join(Lead, Lead.id == FunnelConversion.lead_id)
        .where(FunnelConversion.id > after_id, *lead_clauses(f))
        .order_by(FunnelConversion.id)
        .limit(limit)
    )


QUERIES: dict[str, Callable[[LeadFilter, int, int], Select[Any]]] = {
    "leads": _leads,
    "events": _events,
    "conversions": _conversions,
}


async def batch(
    session: AsyncSession, kind: str, f: LeadFilter, after_id: int, limit: int
) -> Sequence[Row[Any]]:
    query: Select[Any] = QUERIES[kind](f, after_id, limit)
    rows: Sequence[Row[Any]] = (await session.execute(query)).all()
    return rows
