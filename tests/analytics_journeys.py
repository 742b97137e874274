"""A hand-computed data set for the analytics tests, built through the public API.

Journeys (all 2026, UTC; channel of each touch in brackets):

- alice: Jan 5 lead_captured, google/cpc, campaign spring [Paid Search]; Jan 7 webinar
  registered and Jan 8 attended, webinar w1 "Intro Webinar" [Webinars]; Jan 15
  signup_completed [Direct]; converts Jan 15, value 100.00 (10 days).
- bob: Jan 10 appointment_booked, Jan 12 completed, service svc-3 "Consultation"
  [Appointments]; converts Jan 30 12:00, value 50.00 (20.5 days).
- carol: Jan 20 lead_captured, newsletter/email, campaign spring [Email]; Jan 22
  event_registered, event e9 "Spring Meetup" [Events]; converts Mar 1, no value (40 days).
- dave: Feb 3 lead_captured with a Google referrer [Organic Search]; no conversion.
- erin: Feb 10 webinar_registered, w1 [Webinars]; no conversion.
- frank: Dec 20 2025 referral_received [Referral]; converts Jan 5 2026, value 10.00 (outside
  the Jan-Feb cohort: his first touch is in December).
"""

from __future__ import annotations

from typing import Any

import httpx

COHORT = {"start_date": "2026-01-01", "end_date": "2026-02-28"}
WEBINAR = {"item": {"kind": "webinar", "id": "w1", "name": "Intro Webinar"}}
SERVICE = {"item": {"kind": "appointment", "id": "svc-3", "name": "Consultation"}}
MEETUP = {"item": {"kind": "event", "id": "e9", "name": "Spring Meetup"}}


async def event(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await http.post("/funnel/event", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def convert(
    http: httpx.AsyncClient, email: str, at: str, value: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "converted_at": at}
    if value is not None:
        body.update(value=value, currency="USD")
    r = await http.post("/funnel/conversion", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def build(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Store the journeys; returns each person's conversion response."""
    a, b, c = "alice@ex.com", "bob@ex.com", "carol@ex.com"
    await event(
        http,
        source_type="direct_signup",
        event_type="lead_captured",
        email=a,
        occurred_at="2026-01-05T00:00:00Z",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="spring",
    )
    for event_type, day in (("webinar_registered", "07"), ("webinar_attended", "08")):
        await event(
            http,
            source_type="zoom",
            event_type=event_type,
            email=a,
            occurred_at=f"2026-01-{day}T00:00:00Z",
            external_id=f"registrant:w1:alice-{event_type}",
            metadata=WEBINAR,
        )
    await event(
        http,
        source_type="direct_signup",
        event_type="signup_completed",
        email=a,
        occurred_at="2026-01-15T00:00:00Z",
    )
    for event_type, day in (("appointment_booked", "10"), ("appointment_completed", "12")):
        await event(
            http,
            source_type="easyappointments",
            event_type=event_type,
            email=b,
            occurred_at=f"2026-01-{day}T00:00:00Z",
            external_id="appointment:77",
            metadata=SERVICE,
        )
    await event(
        http,
        source_type="manual",
        event_type="lead_captured",
        email=c,
        occurred_at="2026-01-20T00:00:00Z",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="spring",
    )
    await event(
        http,
        source_type="eventbrite",
        event_type="event_registered",
        email=c,
        occurred_at="2026-01-22T00:00:00Z",
        external_id="attendee:9001",
        metadata=MEETUP,
    )
    await event(
        http,
        source_type="direct_signup",
        event_type="lead_captured",
        email="dave@ex.com",
        occurred_at="2026-02-03T00:00:00Z",
        referrer="https://www.google.com/",
    )
    await event(
        http,
        source_type="zoom",
        event_type="webinar_registered",
        email="erin@ex.com",
        occurred_at="2026-02-10T00:00:00Z",
        external_id="registrant:w1:erin",
        metadata=WEBINAR,
    )
    await event(
        http,
        source_type="referral",
        event_type="referral_received",
        email="frank@ex.com",
        occurred_at="2025-12-20T00:00:00Z",
    )
    return {
        "alice": await convert(http, a, "2026-01-15T00:00:00Z", "100.00"),
        "bob": await convert(http, b, "2026-01-30T12:00:00Z", "50.00"),
        "carol": await convert(http, c, "2026-03-01T00:00:00Z"),
        "frank": await convert(http, "frank@ex.com", "2026-01-05T00:00:00Z", "10.00"),
    }
