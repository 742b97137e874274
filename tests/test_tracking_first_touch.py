"""A landing view stored before the visitor is known becomes the lead's first touch when
they identify: on the same device, and on another one joined by alias or by a later identify
with the same user id (both backends, through analytics.js's short paths)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.settings import Settings, load_settings
from tests.conftest import TOKEN

KEY = "wk-browser-first-touch-01"
SITE = "https://www.example.com"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        segment_write_keys=f"{KEY}@{SITE}",
    )


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(
        path,
        content=orjson.dumps({**body, "writeKey": KEY}),
        headers={"Content-Type": "text/plain", "Origin": SITE},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def landing(message_id: str, anonymous_id: str, at: str, query: str) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "timestamp": at,
        "context": {"page": {"url": f"{SITE}/?{query}", "referrer": ""}},
    }


def sign_up(device: str, at: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "/v1/i",
            {
                "type": "identify",
                "messageId": f"{device}-identify",
                "anonymousId": device,
                "userId": "user-42",
                "traits": {"email": "ana@example.com"},
                "timestamp": at,
            },
        ),
        (
            "/v1/t",
            {
                "type": "track",
                "messageId": f"{device}-signed-up",
                "anonymousId": device,
                "userId": "user-42",
                "event": "Signed Up",
                "timestamp": at,
            },
        ),
    ]


async def the_lead(engine: AsyncEngine) -> tuple[Any, Any]:
    async with engine.connect() as conn:
        [lead] = (await conn.execute(select(Lead))).all()
        events = (await conn.execute(select(FunnelEvent).order_by(FunnelEvent.occurred_at))).all()
    return lead, events


async def test_same_device(anon_client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    query = "utm_source=Google&utm_medium=cpc&utm_campaign=Spring&gclid=G-1"
    answer = await post(
        anon_client, "/v1/p", landing("l-1", "phone", "2026-06-01T08:00:00Z", query)
    )
    assert answer["pending"] == 1
    for path, body in sign_up("phone", "2026-06-01T08:05:00Z"):
        await post(anon_client, path, body)
    lead, events = await the_lead(engine)
    assert (lead.first_touch_utm_source, lead.first_touch_utm_campaign) == ("google", "spring")
    assert lead.first_touch_channel == "Paid Search"
    assert (events[0].event_type, events[0].gclid) == ("lead_captured", "G-1")
    assert events[0].landing_page == f"{SITE}/?{query}"


@pytest.mark.parametrize("join", ["identify", "alias"])
async def test_other_device_joined_later(
    anon_client: httpx.AsyncClient, engine: AsyncEngine, join: str
) -> None:
    """Lands on the phone, signs up on the laptop, then the phone learns who it is."""
    phone_query = "utm_source=newsletter&utm_medium=email&utm_campaign=june&fbclid=F-1"
    await post(anon_client, "/v1/p", landing("l-1", "phone", "2026-06-01T08:00:00Z", phone_query))
    await post(
        anon_client, "/v1/p", landing("l-2", "laptop", "2026-06-02T09:00:00Z", "utm_source=bing")
    )
    for path, body in sign_up("laptop", "2026-06-02T09:05:00Z"):
        await post(anon_client, path, body)
    lead, _ = await the_lead(engine)
    assert lead.first_touch_utm_source == "bing"  # all it knows so far
    if join == "identify":  # logging in on the phone: the same user id, no email
        body = {
            "type": "identify",
            "messageId": "phone-login",
            "anonymousId": "phone",
            "userId": "user-42",
            "timestamp": "2026-06-03T07:00:00Z",
        }
        answer = await post(anon_client, "/v1/i", body)
    else:
        body = {
            "type": "alias",
            "messageId": "phone-alias",
            "previousId": "phone",
            "userId": "user-42",
            "timestamp": "2026-06-03T07:00:00Z",
        }
        answer = await post(anon_client, "/v1/a", body)
    assert answer["attached"] == 1, answer
    lead, events = await the_lead(engine)
    assert (lead.first_touch_utm_source, lead.first_touch_utm_campaign) == ("newsletter", "june")
    assert lead.first_seen_at.isoformat().startswith("2026-06-01T08:00:00")
    assert (events[0].fbclid, events[0].utm_medium) == ("F-1", "email")


async def test_a_track_that_arrives_before_its_identify(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Retries reorder a browser's calls: the sign-up track may be stored before the identify
    that names its user; the identify then turns it into the lead's signup_completed."""
    [(identify_path, identify), (track_path, track)] = sign_up("laptop", "2026-06-02T09:05:00Z")
    answer = await post(anon_client, track_path, track)
    assert answer["pending"] == 1
    answer = await post(anon_client, identify_path, identify)
    assert answer["attached"] == 1
    _, events = await the_lead(engine)
    assert [e.event_type for e in events] == ["signup_completed"]
