"""POST /funnel/conversion: attribution on a hand-built history."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead
from tests.helpers import event, post_event

PAT = "pat@example.com"


async def _history(client: httpx.AsyncClient) -> list[dict]:
    return [
        await post_event(
            client,
            event(
                PAT,
                "easyappointments",
                "appointment_booked",
                "2026-01-01T10:00:00Z",
                utm_campaign="Winter",
            ),
        ),
        await post_event(client, event(PAT, "zoom", "webinar_registered", "2026-03-01T09:00:00Z")),
        await post_event(client, event(PAT, "zoom", "webinar_attended", "2026-03-05T09:00:00Z")),
        await post_event(
            client,
            event(
                PAT, "eventbrite", "event_registered", "2026-03-20T12:00:00Z", utm_source="Partner"
            ),
        ),
        # After the conversion: never a touchpoint of it.
        await post_event(client, event(PAT, "manual", "lead_captured", "2026-04-10T00:00:00Z")),
    ]


async def test_first_and_last_touch_days_and_touchpoints(client: httpx.AsyncClient) -> None:
    events = await _history(client)
    r = await client.post(
        "/funnel/conversion",
        json={
            "email": "Pat@Example.com",
            "user_id": "u-1",
            "value": "49.90",
            "currency": "usd",
            "converted_at": "2026-03-21T12:00:00Z",
        },
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["lead_id"] == events[0]["lead_id"]
    assert c["email"] == PAT
    assert c["user_id"] == "u-1"
    assert c["first_touch_source_type"] == "easyappointments"
    assert c["first_touch_at"].startswith("2026-01-01T10:00:00")
    assert c["last_touch_source_type"] == "eventbrite"
    assert c["last_touch_at"].startswith("2026-03-20T12:00:00")
    assert c["days_to_conversion"] == 79  # 79 days and 2 hours
    assert c["total_touchpoints"] == 4
    assert c["first_touch"]["event_id"] == events[0]["event_id"]
    assert c["first_touch"]["event_type"] == "appointment_booked"
    assert c["first_touch"]["utm_campaign"] == "winter"
    assert c["last_touch"]["event_id"] == events[3]["event_id"]
    assert c["last_touch"]["utm_source"] == "partner"
    assert c["currency"] == "USD"
    assert c["value"] == "49.90"
    assert c["duplicate"] is False


async def test_lookback_cuts_off_old_touchpoints_and_ignores_converted_events(
    client: httpx.AsyncClient,
) -> None:
    await _history(client)
    await client.post(
        "/funnel/conversion", json={"email": PAT, "converted_at": "2026-03-21T12:00:00Z"}
    )
    r = await client.post(
        "/funnel/conversion",
        json={
            "email": PAT,
            "conversion_type": "paid",
            "lookback_days": 60,
            "converted_at": "2026-03-21T12:00:00Z",
        },
    )
    c = r.json()
    # 60 days back is 2026-01-20T12:00: the January booking falls out; the earlier
    # conversion's `converted` event is not a touchpoint.
    assert c["total_touchpoints"] == 3
    assert c["first_touch_source_type"] == "zoom"
    assert c["days_to_conversion"] == 20
    assert c["last_touch_source_type"] == "eventbrite"


async def test_repeat_is_a_duplicate(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await _history(client)
    body = {"email": PAT, "converted_at": "2026-03-21T12:00:00Z"}
    first = await client.post("/funnel/conversion", json=body)
    again = await client.post("/funnel/conversion", json={**body, "user_id": "other"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["conversion_id"] == first.json()["conversion_id"]
    assert again.json()["total_touchpoints"] == 4
    async with engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(FunnelConversion))).scalar_one()
        converted = (
            await conn.execute(
                select(func.count())
                .select_from(FunnelEvent)
                .where(FunnelEvent.event_type == "converted")
            )
        ).scalar_one()
    assert n == 1
    assert converted == 1


async def test_unknown_email_creates_the_lead_with_no_touchpoints(
    client: httpx.AsyncClient, session_factory
) -> None:
    r = await client.post("/funnel/conversion", json={"email": "new@example.com"})
    assert r.status_code == 201
    c = r.json()
    assert c["total_touchpoints"] == 0
    assert c["first_touch"] is None and c["last_touch"] is None
    assert c["first_touch_source_type"] is None
    assert c["days_to_conversion"] is None
    assert "no touchpoints" in c["message"]
    async with session_factory() as session:
        lead = await session.get(Lead, c["lead_id"])
    assert lead.stage == 6
    assert lead.converted_at is not None


async def test_ties_in_time_keep_arrival_order(client: httpx.AsyncClient) -> None:
    a = await post_event(
        client, event("tie@example.com", "zoom", "webinar_registered", "2026-05-01T10:00:00Z")
    )
    b = await post_event(
        client, event("tie@example.com", "eventbrite", "event_registered", "2026-05-01T10:00:00Z")
    )
    r = await client.post(
        "/funnel/conversion",
        json={"email": "tie@example.com", "converted_at": "2026-05-02T10:00:00Z"},
    )
    c = r.json()
    assert c["first_touch"]["event_id"] == a["event_id"]
    assert c["last_touch"]["event_id"] == b["event_id"]
    assert c["days_to_conversion"] == 1


async def test_conversion_validation(client: httpx.AsyncClient) -> None:
    for body, field in [
        ({}, "email"),
        ({"email": "x@example.com", "value": -1}, "value"),
        ({"email": "x@example.com", "currency": "dollars"}, "currency"),
        ({"email": "x@example.com", "lookback_days": 0}, "lookback_days"),
        ({"email": "x@example.com", "conversion_type": "Has Spaces"}, "conversion_type"),
        ({"email": "x@example.com", "converted_at": "soon"}, "converted_at"),
    ]:
        r = await client.post("/funnel/conversion", json=body)
        assert r.status_code == 422, body
        assert field in {e["field"] for e in r.json()["errors"]}
