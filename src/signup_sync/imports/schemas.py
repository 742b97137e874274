"""Options, row validation and results of a CSV import."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from signup_sync.bounds import zone
from signup_sync.events.schemas import EventIn, FieldError
from signup_sync.leads.identity import validate_normalised_email
from signup_sync.vocabulary import EventType, SourceType

# Our fields and the header spellings recognised without a mapping (case, spaces, '-', '_'
# and other punctuation are ignored when matching).
IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("e-mail", "email address", "e-mail address", "mail", "email_address"),
    "first_name": ("first name", "firstname", "first", "given name"),
    "last_name": ("last name", "lastname", "last", "surname", "family name"),
    "name": ("name", "full name", "contact name"),
    "phone": ("phone", "phone number", "mobile", "mobile phone", "cell", "telephone", "tel"),
    "company": ("company", "company name", "organization", "organisation", "business"),
    "occurred_at": (
        "date",
        "created",
        "created at",
        "created on",
        "date created",
        "date added",
        "timestamp",
        "time",
        "signup date",
        "submitted at",
    ),
    "external_id": ("external id", "id", "lead id", "record id", "contact id"),
    "event_type": ("event type",),
    "utm_source": (),
    "utm_medium": (),
    "utm_campaign": (),
    "utm_term": (),
    "utm_content": (),
    "referrer": ("referrer url", "referring url", "http referer"),
    "landing_page": ("landing page", "landing page url", "landing url"),
    "gclid": (),
    "fbclid": (),
    "msclkid": (),
}

DEFAULT_EVENT_TYPE: dict[SourceType, EventType] = {
    SourceType.MANUAL: EventType.LEAD_CAPTURED,
    SourceType.REFERRAL: EventType.REFERRAL_RECEIVED,
    SourceType.DIRECT_SIGNUP: EventType.SIGNUP_COMPLETED,
    SourceType.EASYAPPOINTMENTS: EventType.APPOINTMENT_BOOKED,
    SourceType.ZOOM: EventType.WEBINAR_REGISTERED,
    SourceType.EVENTBRITE: EventType.EVENT_REGISTERED,
    SourceType.POSHVIP: EventType.EVENT_REGISTERED,
}


def _json_object(value: Any) -> Any:
    """A column mapping may arrive as a JSON string (query or form field)."""
    if isinstance(value, str | bytes):
        if not value.strip():
            return {}
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError('must be a JSON object like {"E-mail": "email"}') from None
    return value


def _blank_to_none(value: Any) -> Any:
    return (value.strip() or None) if isinstance(value, str) else value


class ImportOptions(BaseModel):
    """How to read one file: what it is, and how its columns map onto event fields."""

    model_config = ConfigDict(extra="forbid")

    source_type: SourceType
    event_type: Annotated[EventType | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, description="default per source: manual -> lead_captured, ..."
    )
    columns: Annotated[dict[str, str], BeforeValidator(_json_object)] = Field(
        default_factory=dict,
        description='{"header in the file": "field"}; "ignore" drops a column',
    )
    timezone: Annotated[str, BeforeValidator(_blank_to_none)] = Field(
        default="UTC", description="IANA zone of dates written without an offset"
    )
    default_region: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(
        default="US", description="country of phone numbers written without +"
    )
    date_format: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, description="strptime format; default ISO 8601 or US month/day/year"
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("must be a two-letter country code such as US")
        return value.upper() if value else None

    @property
    def default_event_type(self) -> EventType:
        return self.event_type or DEFAULT_EVENT_TYPE[self.source_type]


def _optional_email(value: str | None) -> str | None:
    return validate_normalised_email(value) if value is not None else None


class CsvRowIn(EventIn):
    """One row as an event: the fields of ``POST /funnel/event``, but the email may be
    missing when the row has a valid phone (a phone-only lead)."""

    # A phone-only row has no email: the one field that differs from EventIn.
    email: Annotated[
        str | None,
        BeforeValidator(_blank_to_none),
        Field(default=None, max_length=320),
        AfterValidator(_optional_email),
    ] = None  # type: ignore[assignment]


class RowResult(BaseModel):
    row: int = Field(description="the row as a spreadsheet numbers it (the header is row 1)")
    status: Literal["accepted", "duplicate", "erased", "rejected"]
    event_id: int | None = None
    lead_id: int | None = None
    external_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class ImportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_type": "manual",
                    "event_type": "lead_captured",
                    "rows": 2,
                    "accepted": 1,
                    "duplicates": 0,
                    "erased": 0,
                    "rejected": 1,
                    "columns": {"Email": "email", "First Name": "first_name"},
                    "results": [
                        {"row": 2, "status": "accepted", "event_id": 11, "lead_id": 4},
                        {
                            "row": 3,
                            "status": "rejected",
                            "errors": [{"field": "email", "message": "not a valid email address"}],
                        },
                    ],
                }
            ]
        }
    )

    source_type: SourceType
    event_type: EventType = Field(description="the default event type of the rows")
    rows: int
    accepted: int
    duplicates: int
    erased: int = Field(default=0, description="rows of people erased on request; not stored")
    rejected: int
    columns: dict[str, str] = Field(description="{header: field} as the file was read")
    results: list[RowResult]
