"""Recording a conversion: store it once per lead and type, with attribution frozen."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.attribution.touches import Touchpoint, first_and_last, item_of, whole_days
from signup_sync.conversions import repository
from signup_sync.conversions.credits import attribute, credit_columns
from signup_sync.conversions.schemas import AttributedTouch, ConversionIn, ConversionOut, Touch
from signup_sync.db.models import FunnelConversion
from signup_sync.db.types import utcnow
from signup_sync.events import repository as events_repository
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.vocabulary import EventType


def _touch(row: Row[Any]) -> Touchpoint:
    """A touchpoint from a row of ``events_repository.TOUCHPOINT_COLUMNS``."""
    item, item_name = item_of(row.event_metadata)
    return Touchpoint(
        event_id=row.id,
        source_type=row.source_type,
        event_type=row.event_type,
        occurred_at=row.occurred_at,
        utm_source=row.utm_source,
        utm_medium=row.utm_medium,
        utm_campaign=row.utm_campaign,
        utm_term=row.utm_term,
        utm_content=row.utm_content,
        channel=row.channel,
        item=item,
        item_name=item_name,
    )


def _touch_out(data: object) -> Touch | None:
    return Touch.model_validate(data) if data else None


def to_out(conversion: FunnelConversion, email: str, *, duplicate: bool) -> ConversionOut:
    """The answer for a stored conversion, from its attribution document (validating the
    document's strings is cheaper than building the touchpoints with ``model_construct``)."""
    attribution = conversion.attribution or {}
    if duplicate:
        message = "Conversion already recorded for this lead and conversion type; nothing changed"
    elif conversion.total_touchpoints == 0:
        message = (
            f"Conversion recorded; no touchpoints in the {conversion.lookback_days} days "
            "before it, so first and last touch are empty"
        )
    else:
        message = (
            f"Conversion recorded with {conversion.total_touchpoints} touchpoint(s): first touch "
            f"{conversion.first_touch_source_type}, last touch {conversion.last_touch_source_type}"
        )
    return ConversionOut(
        conversion_id=conversion.id,
        lead_id=conversion.lead_id,
        user_id=conversion.user_id,
        email=email,
        conversion_type=conversion.conversion_type,
        value=conversion.value,
        currency=conversion.currency,
        converted_at=conversion.converted_at,
        first_touch_source_type=conversion.first_touch_source_type,
        first_touch_at=conversion.first_touch_at,
        last_touch_source_type=conversion.last_touch_source_type,
        last_touch_at=conversion.last_touch_at,
        days_to_conversion=conversion.days_to_conversion,
        total_touchpoints=conversion.total_touchpoints,
        first_touch=_touch_out(attribution.get("first_touch")),
        last_touch=_touch_out(attribution.get("last_touch")),
        half_life_days=attribution.get("half_life_days"),
        touchpoints=[
            AttributedTouch.model_validate(t) for t in attribution.get("touchpoints") or []
        ],
        duplicate=duplicate,
        message=message,
    )


def erased_out(data: ConversionIn, converted_at: datetime) -> ConversionOut:
    """The answer for a person erased on request: 200, nothing stored."""
    return ConversionOut(
        conversion_id=None,
        lead_id=None,
        user_id=data.user_id,
        email=data.email,
        conversion_type=data.conversion_type,
        value=data.value,
        currency=data.currency,
        converted_at=converted_at,
        first_touch_source_type=None,
        first_touch_at=None,
        last_touch_source_type=None,
        last_touch_at=None,
        days_to_conversion=None,
        total_touchpoints=0,
        first_touch=None,
        last_touch=None,
        duplicate=False,
        erased=True,
        message="This person was erased at their request; nothing was stored",
    )


async def record_conversion(session: AsyncSession, data: ConversionIn) -> ConversionOut:
    """Mark the lead converted (creating it if unknown) once per conversion type."""
    converted_at = data.converted_at or utcnow()
    lead_id, existing = await repository.find_lead_and_conversion(
        session, data.email, data.conversion_type
    )
    if existing is not None:
        return to_out(existing, data.email, duplicate=True)

    touches: list[Touchpoint] = []
    if lead_id is not None:
        events = await events_repository.touchpoints(
            session,
            lead_id,
            since=converted_at - timedelta(days=data.lookback_days),
            until=converted_at,
            exclude_type=EventType.CONVERTED,
        )
        touches = [_touch(e) for e in events]

    metadata: dict[str, object] = {"conversion_type": data.conversion_type}
    if data.user_id:
        metadata["user_id"] = data.user_id
    if data.value is not None:
        metadata["value"] = str(data.value)
        metadata["currency"] = data.currency
    [stored] = await ingest(
        session,
        [
            EventRecord(
                source_type=data.source_type,
                event_type=EventType.CONVERTED,
                occurred_at=converted_at,
                email=data.email,
                external_id=f"conversion:{data.conversion_type}:{data.email}",
                metadata=metadata,
            )
        ],
    )

    if stored.status == "erased":
        return erased_out(data, converted_at)

    first, last = first_and_last(touches)
    conversion = FunnelConversion(
        lead_id=stored.lead_id,
        user_id=data.user_id,
        conversion_type=data.conversion_type,
        value=data.value,
        currency=data.currency,
        converted_at=converted_at,
        lookback_days=data.lookback_days,
        converted_event_id=stored.event_id,
        first_touch_event_id=first.event_id if first else None,
        first_touch_source_type=first.source_type if first else None,
        first_touch_at=first.occurred_at if first else None,
        last_touch_event_id=last.event_id if last else None,
        last_touch_source_type=last.source_type if last else None,
        last_touch_at=last.occurred_at if last else None,
        days_to_conversion=whole_days(first.occurred_at, converted_at) if first else None,
        total_touchpoints=len(touches),
        attribution=None,
        created_at=utcnow(),
    )
    attribution = attribute(touches, converted_at, data.value, data.half_life_days)
    conversion.attribution = {
        "first_touch": first.as_json() if first else None,
        "last_touch": last.as_json() if last else None,
        "half_life_days": data.half_life_days,
        "touchpoints": attribution.touchpoints_json(),
    }
    await repository.add(session, conversion, lambda: credit_columns(attribution))
    return to_out(conversion, data.email, duplicate=False)
