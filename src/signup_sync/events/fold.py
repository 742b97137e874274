"""The fold: a lead row is a function of its person's records (docs/analytics.md, "Words").

One rule, kept by three writers: ``lead_row`` folds a person's new records into lead values;
the lead upsert (``db.bulk._lead_upsert_set``) merges those values into a stored row with
the same rule; ``refold`` (``events.refold``) recomputes rows from stored events when an
event's status changes. The rule:

- Counting records (``EventRecord.counts``: status ``active``) decide everything but names:
  stage, stage times, converted at, first and last seen, first touch (earliest counting
  record; equal times keep arrival order). A person seen only through non-counting records
  (cancelled, refunded, pending, denied) still has a lead, at stage 0, whose times and
  first touch come from those records.
- Names, company and phone: the first non-empty value in arrival order, whatever the
  status (a name on a refunded order is still the person's name).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from signup_sync.attribution.touches import item_of
from signup_sync.channels import derive_channel
from signup_sync.events.records import EventRecord
from signup_sync.vocabulary import EventType, Stage

STAGE_NUMBERS = tuple(int(s) for s in Stage)
TOUCH_COLUMNS = (
    "first_touch_source_type",
    "first_touch_utm_source",
    "first_touch_utm_medium",
    "first_touch_utm_campaign",
    "first_touch_channel",
    "first_touch_item",
    "first_touch_item_name",
)


def channel_of_record(record: EventRecord) -> str:
    return derive_channel(
        record.source_type,
        utm_source=record.utm_source,
        utm_medium=record.utm_medium,
        utm_campaign=record.utm_campaign,
        referrer=record.referrer,
        landing_page=record.landing_page,
        gclid=record.gclid,
        fbclid=record.fbclid,
        msclkid=record.msclkid,
    )


def lead_row(records: Sequence[EventRecord], now: datetime) -> dict[str, Any]:
    """Fold one person's new records (in arrival order) into the values of their lead row."""
    if len(records) == 1:
        return _lead_row_of_one(records[0], now)
    return _folded_lead_row(records, now)


def _folded_lead_row(records: Sequence[EventRecord], now: datetime) -> dict[str, Any]:
    # Stable: equal times keep arrival order, so the first of them is the first touch.
    by_time = sorted(records, key=lambda r: r.occurred_at)
    counting = [r for r in by_time if r.counts]
    timed = counting or by_time  # stage 0: the non-counting records stand in
    first = timed[0]

    def first_value(name: str) -> Any:
        return next((getattr(r, name) for r in records if getattr(r, name)), None)

    converted = [r.occurred_at for r in counting if r.event_type == EventType.CONVERTED]
    item, item_name = item_of(first.metadata)
    return {
        "email": first_value("email"),
        "phone": first_value("phone"),
        "phone_e164": first_value("phone_e164"),
        "first_name": first_value("first_name"),
        "last_name": first_value("last_name"),
        "company": first_value("company"),
        "stage": max((r.stage for r in counting), default=0),
        "first_seen_at": first.occurred_at,
        "last_seen_at": max(r.occurred_at for r in timed),
        "first_touch_source_type": first.source_type,
        "first_touch_utm_source": first.utm_source,
        "first_touch_utm_medium": first.utm_medium,
        "first_touch_utm_campaign": first.utm_campaign,
        "converted_at": min(converted) if converted else None,
        "first_touch_channel": channel_of_record(first),
        "first_touch_item": item,
        "first_touch_item_name": item_name,
        # stage_N_at: when the lead first reached stage N or beyond (see db/models.py).
        **{
            f"stage_{n}_at": min((r.occurred_at for r in counting if r.stage >= n), default=None)
            for n in STAGE_NUMBERS
        },
        "created_at": now,
        "updated_at": now,
    }


def _lead_row_of_one(record: EventRecord, now: datetime) -> dict[str, Any]:
    # lead_row([record]) without the folding: most leads in a batch or a page arrive alone.
    at, stage = record.occurred_at, record.stage if record.counts else 0
    item, item_name = item_of(record.metadata)
    return {
        "email": record.email or None,
        "phone": record.phone or None,
        "phone_e164": record.phone_e164 or None,
        "first_name": record.first_name or None,
        "last_name": record.last_name or None,
        "company": record.company or None,
        "stage": stage,
        "first_seen_at": at,
        "last_seen_at": at,
        "first_touch_source_type": record.source_type,
        "first_touch_utm_source": record.utm_source,
        "first_touch_utm_medium": record.utm_medium,
        "first_touch_utm_campaign": record.utm_campaign,
        "converted_at": at if stage and record.event_type == EventType.CONVERTED else None,
        "first_touch_channel": channel_of_record(record),
        "first_touch_item": item,
        "first_touch_item_name": item_name,
        **{f"stage_{n}_at": at if stage >= n else None for n in STAGE_NUMBERS},
        "created_at": now,
        "updated_at": now,
    }
