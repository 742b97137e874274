"""Segment HTTP tracking spec messages (what we read of them) and the API's responses.

The models validate the fields we use and let every other field through (``extra="allow"``):
the spec is open, and clients add their own. They also document the request bodies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from signup_sync.events.schemas import IsoDateTime

MAX_ID_LENGTH = 200


# Ids are strings in the spec; clients may send integers. Both are stored as text.
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | StrictInt


def _blank_is_absent(value: Any) -> Any:
    """RudderStack's browser SDK sends ``userId: ""`` until the visitor is identified."""
    return None if isinstance(value, str) and not value.strip() else value


# Blank is allowed (and means absent) where an id is optional, so the schema says so too.
OptionalId = Annotated[
    Annotated[str, Field(max_length=MAX_ID_LENGTH)] | StrictInt | None,
    BeforeValidator(_blank_is_absent),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
JsonObject = dict[str, Any]

_OPEN = ConfigDict(extra="allow")


class MessageBase(BaseModel):
    """Fields common to every call of the spec."""

    model_config = _OPEN

    messageId: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = Field(
        default=None, description="deduplication key (per write key, no time window)"
    )
    anonymousId: OptionalId = None
    userId: OptionalId = None
    timestamp: IsoDateTime | None = Field(
        default=None, description="when it happened, by the client's clock (ISO 8601)"
    )
    originalTimestamp: IsoDateTime | None = Field(
        default=None, description="used when timestamp is absent (RudderStack clients)"
    )
    sentAt: IsoDateTime | None = Field(
        default=None, description="when the client sent it; corrects timestamp for clock skew"
    )
    context: JsonObject | None = Field(
        default=None, description="context.campaign holds the UTM fields, context.page the URL"
    )
    integrations: JsonObject | None = None


class TrackMessage(MessageBase):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "track",
                    "event": "Signed Up",
                    "userId": "user-1287",
                    "anonymousId": "4b3f7d0e-8a51-4c1b-9e54-5f2c7a0d9c11",
                    "messageId": "0b6c1a0e-7e58-4b6e-9d0f-6a4f3c2b1d00",
                    "timestamp": "2026-06-03T10:00:00Z",
                    "properties": {"plan": "pro"},
                    "context": {"traits": {"email": "ana@example.com"}},
                }
            ]
        },
    )

    type: Literal["track"] = "track"
    event: Name
    properties: JsonObject | None = None


class IdentifyMessage(MessageBase):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "identify",
                    "userId": "user-1287",
                    "anonymousId": "4b3f7d0e-8a51-4c1b-9e54-5f2c7a0d9c11",
                    "messageId": "5d1e2f3a-0000-4000-8000-000000000001",
                    "traits": {"email": "ana@example.com", "firstName": "Ana"},
                }
            ]
        },
    )

    type: Literal["identify"] = "identify"
    traits: JsonObject | None = None


class PageMessage(MessageBase):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "page",
                    "anonymousId": "4b3f7d0e-8a51-4c1b-9e54-5f2c7a0d9c11",
                    "messageId": "5d1e2f3a-0000-4000-8000-000000000002",
                    "name": "Pricing",
                    "properties": {"url": "https://example.com/pricing?utm_source=google"},
                    "context": {
                        "campaign": {"source": "google", "medium": "cpc", "name": "spring"},
                        "page": {"referrer": "https://www.google.com/"},
                    },
                }
            ]
        },
    )

    type: Literal["page"] = "page"
    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class ScreenMessage(MessageBase):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "screen",
                    "userId": "user-1287",
                    "messageId": "5d1e2f3a-0000-4000-8000-000000000004",
                    "name": "Onboarding",
                }
            ]
        },
    )

    type: Literal["screen"] = "screen"
    name: str | None = None
    properties: JsonObject | None = None


class GroupMessage(MessageBase):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "group",
                    "userId": "user-1287",
                    "messageId": "5d1e2f3a-0000-4000-8000-000000000005",
                    "groupId": "acme",
                    "traits": {"name": "Acme Inc."},
                }
            ]
        },
    )

    type: Literal["group"] = "group"
    groupId: Id | None = None
    traits: JsonObject | None = None


class AliasMessage(MessageBase):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "alias",
                    "previousId": "4b3f7d0e-8a51-4c1b-9e54-5f2c7a0d9c11",
                    "userId": "user-1287",
                    "messageId": "5d1e2f3a-0000-4000-8000-000000000003",
                }
            ]
        },
    )

    type: Literal["alias"] = "alias"
    previousId: Id
    userId: Id


Message = Annotated[
    TrackMessage | IdentifyMessage | PageMessage | ScreenMessage | GroupMessage | AliasMessage,
    Field(discriminator="type"),
]
MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")


class SegmentBatch(BaseModel):
    """``POST /v1/batch``: up to the configured number of messages of any type."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "batch": [
                        PageMessage.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                        IdentifyMessage.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                        TrackMessage.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                    ],
                    "sentAt": "2026-06-03T10:00:05Z",
                }
            ]
        },
    )

    batch: list[JsonObject] = Field(
        description="messages; each has a `type`: track, identify, page, screen, group, alias"
    )
    sentAt: IsoDateTime | None = Field(
        default=None, description="applies to every message without its own sentAt"
    )
    context: JsonObject | None = Field(
        default=None, description="merged under each message's own context"
    )
    writeKey: str | None = Field(
        default=None, description="accepted when no Authorization header is sent"
    )


class MessageProblem(BaseModel):
    index: int
    field: str
    message: str


class UnmappedCount(BaseModel):
    event: str
    count: int


class TrackingOut(BaseModel):
    """Always 200 when the request was stored; `rejected` lists messages that were not."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "success": True,
                    "received": 3,
                    "accepted": 3,
                    "duplicates": 0,
                    "dropped": 0,
                    "rejected": [],
                    "touchpoints": 2,
                    "attached": 1,
                    "pending": 0,
                    "unmapped": [],
                    "warnings": [],
                }
            ]
        }
    )

    success: bool = True
    received: int = Field(description="messages in the request")
    accepted: int = Field(description="new messages stored")
    duplicates: int = Field(description="messages whose messageId was already stored")
    dropped: int = Field(
        default=0,
        description="messages of a person erased on request: answered, stored nowhere",
    )
    rejected: list[MessageProblem] = Field(
        default_factory=list, description="messages refused, with the field and the reason"
    )
    touchpoints: int = Field(description="funnel events written by this request")
    attached: int = Field(
        description="of those, earlier anonymous messages that now belong to a lead"
    )
    pending: int = Field(description="touches stored until their anonymous id is identified")
    unmapped: list[UnmappedCount] = Field(
        default_factory=list, description="track names with no event type: stored, counted"
    )
    warnings: list[MessageProblem] = Field(default_factory=list)


class UnmappedStat(BaseModel):
    event: str
    count: int
    last_received_at: datetime


class TrackingStats(BaseModel):
    """What the tracking API has stored, by status and type; unmapped track names."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "messages": 42,
                    "by_status": {"touchpoint": 20, "pending": 5, "unmapped": 7, "recorded": 10},
                    "by_type": {"track": 25, "page": 12, "identify": 5},
                    "by_write_key": {"3f2a9c0d1e4b5a67": 42},
                    "unmapped_events": [
                        {
                            "event": "Viewed Pricing",
                            "count": 7,
                            "last_received_at": "2026-06-03T10:00:00Z",
                        }
                    ],
                    "identities": 9,
                }
            ]
        }
    )

    messages: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    by_write_key: dict[str, int] = Field(description="keyed by write key id (never the key)")
    unmapped_events: list[UnmappedStat]
    identities: int


__all__ = [
    "MESSAGE_TYPES",
    "AliasMessage",
    "GroupMessage",
    "IdentifyMessage",
    "Message",
    "MessageBase",
    "PageMessage",
    "ScreenMessage",
    "SegmentBatch",
    "TrackMessage",
    "TrackingOut",
    "TrackingStats",
]
