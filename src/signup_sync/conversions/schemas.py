"""Request and response schemas of POST /funnel/conversion."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from signup_sync.attribution.models import DEFAULT_HALF_LIFE_DAYS
from signup_sync.events.schemas import Email, IsoDateTime, Text, check_occurred_at
from signup_sync.vocabulary import SourceType


def _cents(value: Decimal | None) -> Decimal | None:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) if value is not None else None


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError("must be a three-letter ISO 4217 code such as USD")
    return code


class ConversionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "test@example.com",
                    "user_id": "user_123",
                    "conversion_type": "signup",
                    "value": "49.00",
                    "currency": "USD",
                }
            ]
        },
    )

    email: Email
    user_id: Text = None
    conversion_type: Annotated[
        str, Field(default="signup", min_length=1, max_length=64, pattern=r"^[a-z0-9_.:-]+$")
    ] = "signup"
    value: Annotated[
        Decimal | None,
        Field(default=None, ge=0, le=Decimal("999999999999.99"), description="rounded to cents"),
        AfterValidator(_cents),
    ] = None
    currency: Annotated[
        Annotated[str, Field(pattern=r"^\s*[A-Za-z]{3}\s*$")] | None,
        AfterValidator(_currency),
    ] = None
    converted_at: IsoDateTime | None = Field(default=None, description="ISO 8601; default now")
    lookback_days: int = Field(default=90, ge=1, le=3650)
    source_type: SourceType = Field(
        default=SourceType.DIRECT_SIGNUP,
        description="source of the stored `converted` event",
    )
    half_life_days: int = Field(
        default=DEFAULT_HALF_LIFE_DAYS,
        ge=1,
        le=365,
        description="time_decay model: a touchpoint's credit halves for every this many days "
        "between it and the conversion",
    )

    @field_validator("converted_at")
    @classmethod
    def _converted_at(cls, value: datetime | None) -> datetime | None:
        return check_occurred_at(value)


class Touch(BaseModel):
    event_id: int
    source_type: str
    event_type: str
    occurred_at: datetime
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    channel: str | None = None
    item: str | None = None
    item_name: str | None = None


class AttributedTouch(Touch):
    """A touchpoint with its credit under every model (6 places; each model sums to 1)."""

    credits: dict[str, Decimal]
    value_shares: dict[str, Decimal] | None = None


class ConversionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversion_id": 1,
                    "lead_id": 1,
                    "user_id": "user_123",
                    "email": "test@example.com",
                    "conversion_type": "signup",
                    "value": "49.00",
                    "currency": "USD",
                    "converted_at": "2026-06-20T12:00:00Z",
                    "first_touch_source_type": "easyappointments",
                    "first_touch_at": "2026-06-03T17:41:09Z",
                    "last_touch_source_type": "zoom",
                    "last_touch_at": "2026-06-12T10:30:00Z",
                    "days_to_conversion": 16,
                    "total_touchpoints": 2,
                    "first_touch": None,
                    "last_touch": None,
                    "duplicate": False,
                    "erased": False,
                    "message": "Conversion recorded with 2 touchpoint(s)",
                }
            ]
        }
    )

    conversion_id: int | None = Field(description="null when the person was erased")
    lead_id: int | None
    user_id: str | None
    email: str
    conversion_type: str
    value: Decimal | None
    currency: str | None
    converted_at: datetime
    first_touch_source_type: str | None
    first_touch_at: datetime | None
    last_touch_source_type: str | None
    last_touch_at: datetime | None
    days_to_conversion: int | None
    total_touchpoints: int
    first_touch: Touch | None
    last_touch: Touch | None
    half_life_days: int | None = None
    touchpoints: list[AttributedTouch] = Field(default_factory=list)
    duplicate: bool
    erased: bool = Field(
        default=False,
        description="the person asked to be erased (POST /privacy/erase): nothing was stored",
    )
    message: str
