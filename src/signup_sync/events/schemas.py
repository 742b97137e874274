"""Request and response schemas of the event endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from signup_sync.bounds import UtcDateTime, utc_in_range
from signup_sync.events.records import EventRecord
from signup_sync.leads.identity import validate_normalised_email
from signup_sync.vocabulary import EventType, SourceType

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
# Clocks disagree; a day of future is tolerated, more is a client bug.
MAX_FUTURE_SKEW = timedelta(days=1)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL; refuse it here rather than fail at the insert.
            raise ValueError("must not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode (unpaired surrogate)") from None
        value = value.strip()
        return value or None
    return value


# Optional text: trimmed, blank means none, length-capped; UTM values are also lower-cased.
_Blank = BeforeValidator(_blank_to_none)
Text = Annotated[Annotated[str, Field(max_length=255)] | None, _Blank]
Name = Annotated[Annotated[str, Field(max_length=200)] | None, _Blank]
Phone = Annotated[Annotated[str, Field(max_length=64)] | None, _Blank]
Url = Annotated[Annotated[str, Field(max_length=2048)] | None, _Blank]
ClickId = Text
Utm = Annotated[Annotated[str, Field(max_length=255), AfterValidator(str.lower)] | None, _Blank]


# Every date-time field: ISO 8601 text, converted to UTC, inside the supported range.
IsoDateTime = UtcDateTime


def as_utc(value: datetime) -> datetime:
    """A naive time is UTC; an aware one is converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1 if level > 1 else level


def check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Cap the size and nesting of free-form metadata."""
    if value is None:
        return None
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot be stored as JSON: {exc}") from None
    size = len(encoded)
    if b"\\u0000" in encoded:
        raise ValueError("must not contain NUL (\\u0000) characters")
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"is {size} bytes of JSON; at most {MAX_METADATA_BYTES} are allowed")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValueError(f"nests deeper than {MAX_METADATA_DEPTH} levels")
    return value


def check_occurred_at(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    value = utc_in_range(value)
    if value > datetime.now(UTC) + MAX_FUTURE_SKEW:
        raise ValueError("is more than a day in the future")
    if value.year < 2000:
        raise ValueError("is before the year 2000")
    return value


Email = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"format": "email"}),
    AfterValidator(validate_normalised_email),
]


class EventIn(BaseModel):
    """One funnel event as a client sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source_type": "easyappointments",
                    "event_type": "appointment_booked",
                    "email": "test@example.com",
                    "first_name": "John",
                    "last_name": "Doe",
                    "external_id": "ea-appointment-1287",
                    "utm_source": "newsletter",
                    "utm_campaign": "spring-launch",
                }
            ]
        },
    )

    source_type: SourceType
    event_type: EventType
    email: Email
    first_name: Name = None
    last_name: Name = None
    phone: Phone = None
    company: Name = None
    occurred_at: IsoDateTime | None = Field(
        default=None, description="ISO 8601; default now; a time without offset is UTC"
    )
    external_id: Text = None
    utm_source: Utm = None
    utm_medium: Utm = None
    utm_campaign: Utm = None
    utm_term: Utm = None
    utm_content: Utm = None
    referrer: Url = None
    landing_page: Url = None
    gclid: ClickId = None
    fbclid: ClickId = None
    msclkid: ClickId = None
    metadata: dict[str, Any] | None = Field(
        default=None, description=f"a JSON object of at most {MAX_METADATA_BYTES} bytes"
    )

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at(cls, value: datetime | None) -> datetime | None:
        return check_occurred_at(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(value)


class EventOut(BaseModel):
    """What the service stored (or had already stored) for one event."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": 1,
                    "lead_id": 1,
                    "source_type": "easyappointments",
                    "event_type": "appointment_booked",
                    "stage": 2,
                    "email": "test@example.com",
                    "occurred_at": "2026-06-03T17:41:09Z",
                    "created_at": "2026-06-03T17:41:10Z",
                    "duplicate": False,
                    "erased": False,
                    "message": "Event recorded",
                }
            ]
        }
    )

    event_id: int | None = Field(description="null when the person was erased (nothing stored)")
    lead_id: int | None
    source_type: SourceType
    event_type: EventType
    stage: int
    email: str | None
    occurred_at: datetime
    created_at: datetime
    duplicate: bool
    erased: bool = Field(
        default=False,
        description="the person asked to be erased (POST /privacy/erase): nothing was stored",
    )
    message: str


class BatchIn(BaseModel):
    """Up to the configured maximum of events, written in one transaction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "source_type": "zoom",
                            "event_type": "webinar_registered",
                            "email": "ana@example.com",
                            "external_id": "registrant:84512345678:8CeUCKjUQXaGdYbNpw0Z5A",
                            "occurred_at": "2026-06-03T10:00:00Z",
                        },
                        {
                            "source_type": "direct_signup",
                            "event_type": "signup_completed",
                            "email": "ana@example.com",
                        },
                    ]
                }
            ]
        },
    )

    events: list[dict[str, Any]] = Field(
        description="each item has the fields of POST /funnel/event; checked one by one"
    )


class FieldError(BaseModel):
    field: str
    message: str


class BatchItemOut(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "erased", "rejected"] = Field(
        description="`erased`: the person was erased on request; nothing stored"
    )
    event_id: int | None = None
    lead_id: int | None = None
    errors: list[FieldError] = Field(default_factory=list)


class BatchOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "duplicates": 0,
                    "erased": 0,
                    "rejected": 1,
                    "results": [
                        {
                            "index": 0,
                            "status": "accepted",
                            "event_id": 7,
                            "lead_id": 3,
                            "errors": [],
                        },
                        {
                            "index": 1,
                            "status": "rejected",
                            "event_id": None,
                            "lead_id": None,
                            "errors": [{"field": "email", "message": "value is not a valid email"}],
                        },
                    ],
                }
            ]
        }
    )

    accepted: int
    duplicates: int
    erased: int = Field(default=0, description="items of erased people; nothing stored")
    rejected: int
    results: list[BatchItemOut]


def to_record(data: EventIn, *, idempotency_key: str | None = None) -> EventRecord:
    """The validated request as the record ingestion stores (time defaults to now)."""
    return EventRecord(
        source_type=data.source_type.value,
        event_type=data.event_type.value,
        occurred_at=data.occurred_at or datetime.now(UTC),
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
        phone=data.phone,
        company=data.company,
        external_id=data.external_id,
        idempotency_key=idempotency_key,
        utm_source=data.utm_source,
        utm_medium=data.utm_medium,
        utm_campaign=data.utm_campaign,
        utm_term=data.utm_term,
        utm_content=data.utm_content,
        referrer=data.referrer,
        landing_page=data.landing_page,
        gclid=data.gclid,
        fbclid=data.fbclid,
        msclkid=data.msclkid,
        metadata=data.metadata,
    )
