"""Schemas of GET /leads, GET /leads/{id} and the filters the CSV exports share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from signup_sync.vocabulary import Stage

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class LeadSort(StrEnum):
    FIRST_SEEN = "first_seen_at"
    FIRST_SEEN_DESC = "-first_seen_at"
    LAST_SEEN = "last_seen_at"
    LAST_SEEN_DESC = "-last_seen_at"
    STAGE = "stage"
    STAGE_DESC = "-stage"
    EMAIL = "email"
    EMAIL_DESC = "-email"
    NAME = "name"
    NAME_DESC = "-name"
    SOURCE = "first_touch_source_type"
    SOURCE_DESC = "-first_touch_source_type"
    CHANNEL = "first_touch_channel"
    CHANNEL_DESC = "-first_touch_channel"
    CAMPAIGN = "first_touch_utm_campaign"
    CAMPAIGN_DESC = "-first_touch_utm_campaign"

    @property
    def key(self) -> str:
        return self.value.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def textual(self) -> bool:
        """Sorted by a text (empty for none), not by a time or a number."""
        return self.key not in ("first_seen_at", "last_seen_at", "stage")


# A first-touch filter of this value selects the leads that have none (a "(none)" group).
NONE_VALUE = "(none)"


@dataclass(frozen=True, slots=True)
class LeadFilter:
    """Which leads: stage reached or stuck at, first touch, first-seen window [start, end).

    The first-touch fields (``source_type`` … ``item``) match the lead's first touch exactly;
    ``NONE_VALUE`` matches leads without one. ``cohort_month`` is ``YYYY-MM`` of first seen.
    """

    min_stage: int | None = None
    stage: int | None = None
    source_type: str | None = None
    utm_campaign: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    channel: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    item: str | None = None
    cohort_month: str | None = None


def stage_name(stage: int) -> str:
    return Stage(stage).label if stage in Stage._value2member_map_ else "none"


class LeadOut(BaseModel):
    id: int
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    stage: int
    stage_name: str
    first_seen_at: datetime
    last_seen_at: datetime
    first_touch_source_type: str | None
    first_touch_channel: str | None
    first_touch_utm_source: str | None
    first_touch_utm_medium: str | None
    first_touch_utm_campaign: str | None
    first_touch_item: str | None
    converted_at: datetime | None


_LEAD_EXAMPLE: JsonDict = {
    "id": 7,
    "email": "ana@example.com",
    "phone": None,
    "first_name": "Ana",
    "last_name": "Müller",
    "company": None,
    "stage": 3,
    "stage_name": "attended",
    "first_seen_at": "2026-06-01T10:00:00Z",
    "last_seen_at": "2026-06-12T10:00:00Z",
    "first_touch_source_type": "zoom",
    "first_touch_channel": "Email",
    "first_touch_utm_source": "newsletter",
    "first_touch_utm_medium": "email",
    "first_touch_utm_campaign": "spring-launch",
    "first_touch_item": "webinar:845",
    "converted_at": None,
}


class LeadPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_LEAD_EXAMPLE],
                    "limit": 50,
                    "sort": "-first_seen_at",
                    "next_cursor": None,
                    "prev_cursor": None,
                }
            ]
        }
    )

    items: list[LeadOut]
    limit: int
    sort: LeadSort
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filters and sort) for the next page"
    )
    prev_cursor: str | None = Field(
        default=None,
        description="pass as `cursor` for the page before this one; null on the first page",
    )


class TimelineEvent(BaseModel):
    kind: Literal["event"] = "event"
    occurred_at: datetime
    id: int
    source_type: str
    event_type: str
    stage: int
    status: str
    external_id: str | None
    channel: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    referrer: str | None
    landing_page: str | None
    metadata: dict[str, Any] | None


class TimelineConversion(BaseModel):
    kind: Literal["conversion"] = "conversion"
    occurred_at: datetime
    id: int
    conversion_type: str
    user_id: str | None
    value: Decimal | None
    currency: str | None
    first_touch_source_type: str | None
    last_touch_source_type: str | None
    days_to_conversion: int | None
    total_touchpoints: int


TimelineItem = Annotated[TimelineEvent | TimelineConversion, Field(discriminator="kind")]


class LeadDetail(LeadOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_LEAD_EXAMPLE,
                    "timeline": [
                        {
                            "kind": "event",
                            "occurred_at": "2026-06-01T10:00:00Z",
                            "id": 31,
                            "source_type": "zoom",
                            "event_type": "webinar_registered",
                            "stage": 2,
                            "status": "active",
                            "external_id": "webinar:845:registrant:8CeU",
                        }
                    ],
                }
            ]
        }
    )

    timeline: list[TimelineItem] = Field(description="events and conversions, oldest first")
