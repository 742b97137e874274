"""A small hand-built funnel: seven people whose stages and first touches are known by heart."""

from __future__ import annotations

from typing import Any

import httpx

# email -> (furthest stage, first-touch source, first-touch campaign, first seen)
EXPECTED: dict[str, tuple[int, str, str | None, str]] = {
    "ana@example.com": (6, "zoom", "spring", "2026-06-01T10:00:00+00:00"),
    "ben@example.com": (2, "eventbrite", "summer", "2026-06-05T09:00:00+00:00"),
    "cara@example.com": (1, "manual", "spring", "2026-06-05T09:00:00+00:00"),
    "dev@example.com": (3, "referral", None, "2026-07-01T08:00:00+00:00"),
    "eli@example.com": (4, "direct_signup", None, "2026-07-10T15:30:00+00:00"),
    "fay@example.com": (3, "zoom", "spring", "2026-08-01T10:00:00+00:00"),
    "gus@example.com": (2, "easyappointments", None, "2026-08-15T11:00:00+00:00"),
}


def _e(email: str, source: str, event: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "source_type": source,
        "event_type": event,
        "occurred_at": at,
        "external_id": f"{email}:{event}",
        **extra,
    }


EVENTS: list[dict[str, Any]] = [
    _e(
        "ana@example.com",
        "zoom",
        "webinar_registered",
        "2026-06-01T10:00:00Z",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="spring",
        first_name="Ana",
        last_name="Núñez",
    ),
    _e("ana@example.com", "zoom", "webinar_attended", "2026-06-02T10:00:00Z"),
    _e("ana@example.com", "direct_signup", "signup_started", "2026-06-03T10:00:00Z"),
    _e("ana@example.com", "direct_signup", "signup_completed", "2026-06-04T10:00:00Z"),
    _e(
        "ben@example.com",
        "eventbrite",
        "event_registered",
        "2026-06-05T09:00:00Z",
        utm_source="facebook",
        utm_campaign="summer",
        first_name="Ben",
    ),
    _e(
        "cara@example.com",
        "manual",
        "lead_captured",
        "2026-06-05T09:00:00Z",
        utm_source="newsletter",
        utm_campaign="spring",
        first_name='=HYPERLINK("x")',
        phone="+1 (555) 010-0200",
    ),
    _e("dev@example.com", "referral", "referral_received", "2026-07-01T08:00:00Z"),
    _e(
        "dev@example.com",
        "easyappointments",
        "appointment_booked",
        "2026-07-02T08:00:00Z",
        utm_campaign="summer",
    ),
    _e("dev@example.com", "easyappointments", "appointment_completed", "2026-07-03T08:00:00Z"),
    _e("eli@example.com", "direct_signup", "signup_started", "2026-07-10T15:30:00Z"),
    _e(
        "fay@example.com",
        "zoom",
        "webinar_registered",
        "2026-08-01T10:00:00Z",
        utm_source="google",
        utm_campaign="spring",
    ),
    _e("fay@example.com", "zoom", "webinar_attended", "2026-08-01T12:00:00Z"),
    _e("gus@example.com", "easyappointments", "appointment_booked", "2026-08-15T11:00:00Z"),
]

CONVERSION: dict[str, Any] = {
    "email": "ana@example.com",
    "user_id": "user_ana",
    "conversion_type": "subscription",
    "value": "49.00",
    "currency": "USD",
    "converted_at": "2026-06-10T10:00:00Z",
}


async def load(client: httpx.AsyncClient) -> dict[str, int]:
    """Store the data set through the API; return each email's lead id."""
    r = await client.post("/funnel/events/batch", json={"events": EVENTS})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(EVENTS)
    r = await client.post("/funnel/conversion", json=CONVERSION)
    assert r.status_code == 201, r.text
    r = await client.get("/leads", params={"limit": 500})
    assert r.status_code == 200, r.text
    return {lead["email"]: lead["id"] for lead in r.json()["items"]}
