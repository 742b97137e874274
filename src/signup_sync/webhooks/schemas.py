"""Shapes of the webhook endpoints: acknowledgements, inbox rows, and documented bodies.

The receivers read the raw body themselves (Zoom signs its bytes); the body models below
only document what each sender posts and make sure it is a JSON object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DeliveryStatus = Literal["pending", "processing", "done", "failed", "parked"]


class WebhookAck(BaseModel):
    """Stored (or already stored): the worker processes it shortly."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "accepted", "delivery_id": 42}]}
    )

    status: Literal["accepted", "duplicate"]
    delivery_id: int


class ZoomUrlValidation(BaseModel):
    """The answer to Zoom's ``endpoint.url_validation`` challenge."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
                    "encryptedToken": "0ed7674589a879105652de4ef132c56b"
                    "0c0b7336bcf521eb3fe6fdefca1eff2f",
                }
            ]
        }
    )

    # Zoom's field names.
    plainToken: str
    encryptedToken: str


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "source_type": "eventbrite",
                    "source_id": 3,
                    "received_at": "2026-06-03T10:00:00Z",
                    "status": "parked",
                    "attempts": 1,
                    "last_error": "api_url is not on Eventbrite's API host nor the source's "
                    "base_url; nothing was fetched",
                    "next_attempt_at": "2026-06-03T10:00:00Z",
                    "processed_at": None,
                    "dedupe_key": "delivery:1806556-1",
                    "headers": {"x-eventbrite-event": "order.placed"},
                    "body": '{"config": {"action": "order.placed"}, "api_url": "..."}',
                    "result": None,
                }
            ]
        },
    )

    id: int
    source_type: str
    source_id: int | None
    received_at: datetime
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    processed_at: datetime | None
    dedupe_key: str
    headers: dict[str, Any] | None
    body: str = Field(description="the raw body as text (first 8 KiB)")
    result: dict[str, Any] | None = Field(
        description="events stored / duplicates, external ids, skip or ignore reason"
    )


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ZoomWebhookBody(_Open):
    """What Zoom posts (source-apis.md §2.6), signed with ``x-zm-signature``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "event": "webinar.registration_created",
                    "event_ts": 1717430401000,
                    "payload": {
                        "account_id": "AbCdEfGhIjKlMnOpQrStUv",
                        "object": {
                            "id": 84512345678,
                            "uuid": "Xy7q8JmXQ6KJ2y7f1c3kOw==",
                            "registrant": {
                                "id": "8CeUCKjUQXaGdYbNpw0Z5A",
                                "email": "ana.muller@example.com",
                                "first_name": "Ana",
                                "last_name": "Müller",
                                "status": "approved",
                            },
                        },
                    },
                }
            ]
        },
    )


class EventbriteWebhookBody(_Open):
    """Eventbrite's thin notification: only a pointer (``api_url``) to fetch."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "config": {
                        "action": "order.placed",
                        "user_id": "311783287832",
                        "endpoint_url": "https://sync.example.com/webhooks/eventbrite/3?secret=...",
                        "webhook_id": "1806556",
                    },
                    "api_url": "https://www.eventbriteapi.com/v3/orders/4512987301/",
                }
            ]
        },
    )


class EasyAppointmentsWebhookBody(_Open):
    """EasyAppointments' ``{action, payload: raw DB row}``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "action": "appointment_save",
                    "payload": {
                        "id": 1287,
                        "book_datetime": "2024-06-03 17:41:09",
                        "start_datetime": "2024-06-12 10:30:00",
                        "end_datetime": "2024-06-12 11:00:00",
                        "hash": "k3Jd9QwX2pLm",
                        "status": "Booked",
                        "is_unavailability": False,
                        "id_users_provider": 2,
                        "id_users_customer": 342,
                        "id_services": 1,
                    },
                }
            ]
        },
    )


class PoshRelayBody(_Open):
    """One Posh.VIP order relayed by an automation tool; fields mapped by relay_columns."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "order_number": "PSH-10482",
                    "event_name": "Rooftop Fridays",
                    "event_date": "2024-06-21 22:00",
                    "email": "xiaolong.li@example.cn",
                    "first_name": "小龍",
                    "last_name": "李",
                    "total_paid": "46.50",
                    "currency": "USD",
                    "order_status": "approved",
                    "purchased_at": "2024-06-18 19:42",
                }
            ]
        },
    )
