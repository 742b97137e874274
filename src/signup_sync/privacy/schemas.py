"""Request and response schemas of erasure."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from signup_sync.events.schemas import Email, Phone


class ErasureIn(BaseModel):
    """Who to erase: an email, a phone number, or both (each is erased)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "ana@example.com"},
                {"phone": "+1 305 555 0188"},
                {"phone": "(305) 555-0188", "phone_region": "US"},
            ]
        },
    )

    email: Email | None = None
    phone: Phone = None
    phone_region: Annotated[
        str | None,
        Field(
            default=None,
            pattern=r"^[A-Za-z]{2}$",
            description="ISO 3166 country of a phone written without +country code (e.g. US)",
        ),
    ] = None


class ErasureOut(BaseModel):
    """What an erasure removed. Identifiers are not echoed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "leads_deleted": 1,
                    "events_deleted": 4,
                    "conversions_deleted": 1,
                    "tombstones_added": 2,
                    "tracking_messages_deleted": 3,
                    "tracking_identities_deleted": 2,
                    "webhook_deliveries_deleted": 1,
                    "other_rows_deleted": 0,
                    "values_scrubbed": 0,
                    "message": "Erased 1 lead with 4 events and 1 conversion; future records "
                    "of this person from any source are refused (counted as skipped: erased)",
                }
            ]
        }
    )

    leads_deleted: int
    events_deleted: int
    conversions_deleted: int
    tombstones_added: int = Field(
        description="identifiers (email, E.164 phone) newly blocked; 0 when already erased"
    )
    tracking_messages_deleted: int = Field(
        default=0, description="/v1 messages of the person (their ids, or carrying them)"
    )
    tracking_identities_deleted: int = Field(
        default=0, description="/v1 anonymous and user ids tied to the person"
    )
    webhook_deliveries_deleted: int = Field(
        default=0, description="stored webhook deliveries carrying or naming the person"
    )
    other_rows_deleted: int = Field(default=0, description="other rows carrying the person")
    values_scrubbed: int = Field(
        default=0,
        description="values of other rows (another lead's event, a sync log) the person's "
        "email or phone was cut out of",
    )
    message: str
