"""Listing leads page by page, and one lead with its timeline."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.bounds import bounded_int, utc_in_range
from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead
from signup_sync.errors import InvalidInput, NotFound
from signup_sync.leads import repository
from signup_sync.leads.schemas import (
    LeadDetail,
    LeadFilter,
    LeadOut,
    LeadPage,
    LeadSort,
    TimelineConversion,
    TimelineEvent,
    TimelineItem,
    stage_name,
)
from signup_sync.vocabulary import Stage


def encode_cursor(sort: LeadSort, key: Any, lead_id: int, *, backwards: bool = False) -> str:
    """Opaque to clients: the sort, the row's (key, id) and the direction, base64url JSON."""
    value = key.isoformat() if isinstance(key, datetime) else key
    data = {"s": sort.value, "k": value, "i": lead_id, **({"b": 1} if backwards else {})}
    raw = json.dumps(data, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: LeadSort) -> tuple[Any, int, bool]:
    """(key, id, backwards) of a cursor issued for ``sort``; a 422 naming ``cursor`` else."""
    bad = InvalidInput("cursor is not one this service issued; start without it", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, lead_id, cursor_sort = data["k"], data["i"], data["s"]
        backwards = bool(data.get("b"))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if cursor_sort != sort.value:
        raise InvalidInput(
            f"cursor was issued for sort={cursor_sort}; repeat that sort or start over",
            field="cursor",
        )
    try:
        # Bounded as the database holds them: a forged id of 2**70 or a year-9999 key is
        # refused here, not as an overflow in the driver.
        bounded_int(lead_id, 1)
        if sort.key == "stage":
            return bounded_int(key, 0, int(max(Stage))), lead_id, backwards
        if sort.textual:
            if not isinstance(key, str):
                raise ValueError
            return key, lead_id, backwards
        return utc_in_range(datetime.fromisoformat(key)), lead_id, backwards
    except (ValueError, TypeError):
        raise bad from None


def lead_out(lead: Lead) -> LeadOut:
    return LeadOut(**_lead_fields(lead))


def _lead_fields(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "email": lead.email,
        "phone": lead.phone,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "company": lead.company,
        "stage": lead.stage,
        "stage_name": stage_name(lead.stage),
        "first_seen_at": lead.first_seen_at,
        "last_seen_at": lead.last_seen_at,
        "first_touch_source_type": lead.first_touch_source_type,
        "first_touch_channel": lead.first_touch_channel,
        "first_touch_utm_source": lead.first_touch_utm_source,
        "first_touch_utm_medium": lead.first_touch_utm_medium,
        "first_touch_utm_campaign": lead.first_touch_utm_campaign,
        "first_touch_item": lead.first_touch_item,
        "converted_at": lead.converted_at,
    }


async def list_leads(
    session: AsyncSession, f: LeadFilter, sort: LeadSort, cursor: str | None, limit: int
) -> LeadPage:
    """One page in either direction; each page knows the cursors of its neighbours."""
    after = decode_cursor(cursor, sort) if cursor else None
    backwards = after[2] if after else False
    # One row more than asked tells whether a page lies beyond, without a count.
    rows = list(
        await repository.page(
            session, f, sort, after[:2] if after else None, limit + 1, backwards=backwards
        )
    )
    beyond = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    has_next = beyond if not backwards else after is not None
    has_prev = beyond if backwards else after is not None
    next_cursor = prev_cursor = None
    if rows and has_next:
        lead, key = rows[-1]
        next_cursor = encode_cursor(sort, key, lead.id)
    if rows and has_prev:
        lead, key = rows[0]
        prev_cursor = encode_cursor(sort, key, lead.id, backwards=True)
    return LeadPage(
        items=[lead_out(lead) for lead, _ in rows],
        limit=limit,
        sort=sort,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


async def count_leads(session: AsyncSession, f: LeadFilter) -> int:
    """How many leads the filters select (the people list's total)."""
    return await repository.count(session, f)


def _event_item(event: FunnelEvent) -> TimelineEvent:
    return TimelineEvent(
        occurred_at=event.occurred_at,
        id=event.id,
        source_type=event.source_type,
        event_type=event.event_type,
        stage=event.stage,
        status=event.status,
        external_id=event.external_id,
        channel=event.channel,
        utm_source=event.utm_source,
        utm_medium=event.utm_medium,
        utm_campaign=event.utm_campaign,
        utm_term=event.utm_term,
        utm_content=event.utm_content,
        referrer=event.referrer,
        landing_page=event.landing_page,
        metadata=event.event_metadata,
    )


def _conversion_item(conversion: FunnelConversion) -> TimelineConversion:
    return TimelineConversion(
        occurred_at=conversion.converted_at,
        id=conversion.id,
        conversion_type=conversion.conversion_type,
        user_id=conversion.user_id,
        value=conversion.value,
        currency=conversion.currency,
        first_touch_source_type=conversion.first_touch_source_type,
        last_touch_source_type=conversion.last_touch_source_type,
        days_to_conversion=conversion.days_to_conversion,
        total_touchpoints=conversion.total_touchpoints,
    )


async def lead_detail(session: AsyncSession, lead_id: int) -> LeadDetail:
    lead = await repository.get(session, lead_id)
    if lead is None:
        raise NotFound(f"No lead with id {lead_id}", field="lead_id")
    timeline: list[TimelineItem] = [
        _event_item(e) for e in await repository.events_of(session, lead_id)
    ]
    timeline += [_conversion_item(c) for c in await repository.conversions_of(session, lead_id)]
    # Stable sort: at equal times the converted event comes before the conversion it recorded.
    timeline.sort(key=lambda item: item.occurred_at)
    return LeadDetail(**_lead_fields(lead), timeline=timeline)
