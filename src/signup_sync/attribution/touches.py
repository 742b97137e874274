"""First and last touch, and the day count between a first touch and a conversion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Touchpoint:
    event_id: int
    source_type: str
    event_type: str
    occurred_at: datetime
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    channel: str | None = None
    item: str | None = None  # "kind:id" of metadata.item (a webinar, event, appointment...)
    item_name: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "source_type": self.source_type,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat(),
            "utm_source": self.utm_source,
            "utm_medium": self.utm_medium,
            "utm_campaign": self.utm_campaign,
            "utm_term": self.utm_term,
            "utm_content": self.utm_content,
            "channel": self.channel,
            "item": self.item,
            "item_name": self.item_name,
        }


def item_of(metadata: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """The ``"kind:id"`` key and name of an event's ``metadata.item``, when it has one."""
    item = (metadata or {}).get("item")
    if not isinstance(item, Mapping) or item.get("id") in (None, ""):
        return None, None
    key = f"{item.get('kind') or 'item'}:{item['id']}"[:300]
    name = item.get("name")
    return key, (str(name)[:255] if name not in (None, "") else None)


def first_and_last(touches: Sequence[Touchpoint]) -> tuple[Touchpoint | None, Touchpoint | None]:
    """Touches must be ordered oldest first (ties in arrival order)."""
    if not touches:
        return None, None
    return touches[0], touches[-1]


def whole_days(start: datetime, end: datetime) -> int:
    """Completed days from ``start`` to ``end`` (never negative)."""
    return max(0, int((end - start).total_seconds() // 86400))
