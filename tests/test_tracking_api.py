"""The Segment-spec tracking API in-process, on both backends: auth, bodies, dedupe, identity."""

from __future__ import annotations

import asyncio
import base64
import gzip
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead, TrackingMessage
from signup_sync.settings import Settings, load_settings
from tests.conftest import TOKEN, TOKEN_ROTATED

WRITE_KEY = "wk-test-segment-0001"
REFERRAL_KEY = "wk-test-referral-0002"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=f"{TOKEN},{TOKEN_ROTATED}",
        auto_migrate=False,
        sync_scheduler_enabled=False,
        segment_write_keys=f"{WRITE_KEY},{REFERRAL_KEY}=referral",
        segment_event_map='{"Demo Booked": "appointment_booked", "Order Completed": null}',
    )


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def send(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str = WRITE_KEY
) -> httpx.Response:
    return await client.post(path, json=body, headers=basic(key))


async def rows(engine: AsyncEngine, model: Any, *where: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(model).where(*where))).all())


async def count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(model)) or 0)


def track(message_id: str, event: str, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "event": event, **extra}


async def test_track_is_stored_once_with_exactly_200(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = track(
        "m-1",
        "Signed Up",
        userId="u-1",
        timestamp="2026-06-03T10:00:00Z",
        context={"traits": {"email": " Ana@Example.com "}},
    )
    first = await send(client, "/v1/track", body)
    assert first.status_code == 200, first.text
    assert first.json()["success"] is True
    assert (first.json()["accepted"], first.json()["touchpoints"]) == (1, 1)
    again = await send(client, "/v1/batch", {"batch": [body, body]})
    assert again.status_code == 200
    assert (again.json()["duplicates"], again.json()["accepted"]) == (2, 0)
    [event] = await rows(engine, FunnelEvent)
    assert (event.event_type, event.source_type, event.external_id) == (
        "signup_completed",
        "direct_signup",
        "segment:m-1",
    )
    [lead] = await rows(engine, Lead)
    assert lead.email == "ana@example.com"
    assert await count(engine, TrackingMessage) == 1


async def test_write_key_is_the_basic_user_name(anon_client: httpx.AsyncClient) -> None:
    body = track("m-auth", "Signed Up", anonymousId="a-1")
    r = await anon_client.post("/v1/track", json=body)
    assert r.status_code == 401
    assert "Basic-auth user name" in r.json()["detail"]
    r = await send(anon_client, "/v1/track", body, key="wrong-key-123")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    assert "wrong-key-123" not in r.text
    r = await anon_client.post("/v1/track", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 401
    # The spec also allows the key in the body when no header is sent.
    r = await anon_client.post("/v1/track", json={**body, "writeKey": WRITE_KEY})
    assert r.status_code == 200, r.text


async def test_gzip_bodies_and_the_decompressed_limit(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = b'{"batch": [{"type": "track", "event": "Signed Up", "anonymousId": "a-z"}]}'
    headers = {**basic(WRITE_KEY), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    r = await anon_client.post("/v1/batch", content=gzip.compress(body), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["pending"] == 1
    # A zip bomb: 2 KiB on the wire, 4 MiB once inflated.
    bomb = gzip.compress(b'{"batch": ["' + b" " * (4 * 1024 * 1024) + b'"]}')
    assert len(bomb) < 16 * 1024
    r = await anon_client.post("/v1/batch", content=bomb, headers=headers)
    assert r.status_code == 413
    assert "decompressed" in r.json()["detail"]
    r = await anon_client.post("/v1/batch", content=b"not gzip at all", headers=headers)
    assert r.status_code == 400
    assert r.json()["message"] == "The body is not valid gzip data"
    r = await anon_client.post("/v1/batch", content=gzip.compress(body)[:-12], headers=headers)
    assert r.status_code == 400
    assert await count(engine, TrackingMessage) == 1


@pytest.mark.parametrize(
    ("path", "content", "field", "words"),
    [
        ("/v1/batch", b"{not json", "body", "not valid JSON"),
        ("/v1/batch", b"[1, 2]", "body", "JSON object"),
        ("/v1/batch", b'{"batch": {"type": "track"}}', "batch", "valid list"),
        ("/v1/batch", b'{"batch": []}', "batch", "no messages"),
        ("/v1/track", b'{"userId": "u"}', "event", "Field required"),
        ("/v1/track", b'{"event": "Signed Up"}', "userId", "userId or an anonymousId"),
        ("/v1/page", b'{"anonymousId": "a", "timestamp": 17}', "timestamp", "ISO 8601"),
        ("/v1/alias", b'{"userId": "u"}', "previousId", "Field required"),
        ("/v1/identify", b'{"type": "track", "userId": "u"}', "type", "identify"),
    ],
)
async def test_malformed_bodies_are_400_saying_why(
    anon_client: httpx.AsyncClient, path: str, content: bytes, field: str, words: str
) -> None:
    headers = {**basic(WRITE_KEY), "Content-Type": "application/json"}
    r = await anon_client.post(path, content=content, headers=headers)
    assert r.status_code == 400, r.text
    body = r.json()
    assert words in body["detail"]
    assert body["message"] == body["detail"]  # what the Segment/Rudder clients log
    assert field in {e["field"] for e in body["errors"]}


async def test_a_bad_message_in_a_batch_is_rejected_alone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    batch = [
        track("ok-1", "Signed Up", userId="u-9", context={"traits": {"email": "x@example.com"}}),
        {"type": "track", "messageId": "bad-1", "userId": "u-9"},
        {"type": "screen", "messageId": "bad-2"},
        {"type": "bogus", "messageId": "bad-3", "userId": "u-9"},
        {"type": "identify", "messageId": "ok-2", "userId": "u-9", "traits": {"email": "no@"}},
    ]
    r = await send(client, "/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"]) == (5, 2)
    assert {(p["index"], p["field"]) for p in body["rejected"]} == {
        (1, "event"),
        (2, "userId"),
        (3, "type"),
    }
    assert [(w["index"], w["field"]) for w in body["warnings"]] == [(4, "traits.email")]
    assert await count(engine, TrackingMessage) == 2


async def test_clock_skew_is_corrected_by_received_minus_sent(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = datetime(2026, 6, 3, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr("signup_sync.api.tracking.utcnow", lambda: received)
    email = {"context": {"traits": {"email": "clock@example.com"}}}
    batch = {
        # The client's clock is 1h55m slow: it says it sent at 10:05, we received at 12:00.
        "sentAt": "2026-06-03T10:05:00Z",
        "batch": [
            track("skew-1", "Signed Up", userId="c", timestamp="2026-06-03T10:00:00Z", **email),
            # A message's own sentAt wins over the batch's: this clock is 30 minutes fast.
            track(
                "skew-2",
                "Webinar Registered",
                userId="c",
                timestamp="2026-06-03T12:20:00+00:00",
                sentAt="2026-06-03T12:30:00Z",
                **email,
            ),
        ],
    }
    assert (await send(client, "/v1/batch", batch)).status_code == 200
    # Without any sentAt the timestamp is kept; without a timestamp it is receivedAt.
    plain = track("skew-3", "Signup Started", userId="c", timestamp="2026-06-02T09:00:00Z", **email)
    assert (await send(client, "/v1/track", plain)).status_code == 200
    assert (
        await send(client, "/v1/track", track("skew-4", "Event Attended", userId="c"))
    ).status_code == 200
    times = {e.external_id: e.occurred_at for e in await rows(engine, FunnelEvent)}
    assert times == {
        "segment:skew-1": datetime(2026, 6, 3, 11, 55, tzinfo=UTC),  # 10:00 + (12:00 - 10:05)
        "segment:skew-2": datetime(2026, 6, 3, 11, 50, tzinfo=UTC),  # 12:20 + (12:00 - 12:30)
        "segment:skew-3": datetime(2026, 6, 2, 9, 0, tzinfo=UTC),
        "segment:skew-4": received,
    }


async def test_identify_turns_anonymous_landing_views_into_the_leads_first_touch(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # The person is already a lead through a Zoom registration on June 3.
    zoom = {
        "source_type": "zoom",
        "event_type": "webinar_registered",
        "email": "ana@example.com",
        "occurred_at": "2026-06-03T09:00:00Z",
    }
    assert (await client.post("/funnel/event", json=zoom)).status_code == 201
    landing = {
        "type": "page",
        "messageId": "p-1",
        "anonymousId": "anon-A",
        "timestamp": "2026-06-01T08:00:00Z",
        "properties": {"url": "https://example.com/?utm_source=Google&utm_medium=cpc"},
        "context": {
            "campaign": {"name": "Spring", "source": "google", "medium": "cpc"},
            "page": {"url": "https://example.com/", "referrer": "https://www.google.com/"},
        },
    }
    internal = {
        "type": "page",
        "messageId": "p-2",
        "anonymousId": "anon-A",
        "timestamp": "2026-06-01T08:01:00Z",
        "context": {
            "page": {"url": "https://example.com/pricing", "referrer": "https://example.com/"}
        },
    }
    demo = track("t-1", "Demo Booked", anonymousId="anon-A", timestamp="2026-06-02T08:00:00Z")
    r = await send(client, "/v1/batch", {"batch": [landing, internal, demo]})
    assert (r.json()["pending"], r.json()["touchpoints"]) == (2, 0)
    assert len(await rows(engine, FunnelEvent)) == 1  # nothing moved yet

    identify = {
        "type": "identify",
        "messageId": "i-1",
        "anonymousId": "anon-A",
        "userId": "user-A",
        "traits": {"email": "ANA@example.com", "firstName": "Ana", "company": {"name": "Acme"}},
    }
    r = await send(client, "/v1/identify", identify)
    assert r.status_code == 200
    assert (r.json()["attached"], r.json()["touchpoints"], r.json()["pending"]) == (2, 2, 0)

    [lead] = await rows(engine, Lead)
    assert lead.first_seen_at == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert lead.first_touch_source_type == "direct_signup"
    assert (lead.first_touch_utm_source, lead.first_touch_utm_campaign) == ("google", "spring")
    assert lead.first_touch_channel == "Paid Search"
    assert lead.stage == 2
    events = await rows(engine, FunnelEvent, FunnelEvent.lead_id == lead.id)
    assert sorted((e.event_type, e.external_id) for e in events) == [
        ("appointment_booked", "segment:t-1"),
        ("lead_captured", "segment:p-1"),
        ("webinar_registered", None),
    ]
    statuses = {m.message_id: m.status for m in await rows(engine, TrackingMessage)}
    assert statuses == {
        "p-1": "touchpoint",
        "p-2": "recorded",
        "t-1": "touchpoint",
        "i-1": "recorded",
    }

    # From now on the user id alone reaches the lead.
    r = await send(client, "/v1/track", track("t-2", "Signed Up", userId="user-A"))
    assert (r.json()["touchpoints"], r.json()["pending"]) == (1, 0)
    detail = (await client.get(f"/leads/{lead.id}")).json()
    assert detail["stage_name"] == "signed_up"
    assert detail["first_name"] == "Ana"
    # Identifying again changes nothing.
    r = await send(client, "/v1/identify", {**identify, "messageId": "i-2"})
    assert (r.json()["attached"], r.json()["touchpoints"]) == (0, 0)


async def test_alias_merges_previous_id_into_user_id(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = {
        "type": "page",
        "messageId": "p-b",
        "anonymousId": "anon-B",
        "timestamp": "2026-06-01T08:00:00Z",
        "context": {"campaign": {"source": "newsletter", "medium": "email"}},
    }
    assert (await send(client, "/v1/page", page)).json()["pending"] == 1
    alias = {"type": "alias", "messageId": "al-1", "previousId": "anon-B", "userId": "user-B"}
    assert (await send(client, "/v1/alias", alias)).json()["attached"] == 0
    identify = {"messageId": "i-b", "userId": "user-B", "traits": {"email": "bob@example.com"}}
    r = await send(client, "/v1/identify", identify)
    assert r.json()["attached"] == 1
    [lead] = await rows(engine, Lead)
    assert (lead.email, lead.first_touch_utm_source, lead.first_touch_channel) == (
        "bob@example.com",
        "newsletter",
        "Email",
    )


async def test_unmapped_names_are_stored_and_counted_and_keys_carry_a_source_type(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    who = {"userId": "u-5", "context": {"traits": {"email": "eve@example.com"}}}
    batch = [
        track("n-1", "Viewed Pricing", **who),
        track("n-2", "viewed  pricing", **who),
        track("n-3", "Order Completed", **who),  # unmapped by SEGMENT_EVENT_MAP
        track("n-4", "demo booked", **who),  # mapped by it, any case
    ]
    r = await send(client, "/v1/batch", {"batch": batch}, key=REFERRAL_KEY)
    assert r.json()["unmapped"] == [
        {"event": "Order Completed", "count": 1},
        {"event": "Viewed Pricing", "count": 1},
        {"event": "viewed  pricing", "count": 1},
    ]
    [event] = await rows(engine, FunnelEvent)
    assert (event.event_type, event.source_type) == ("appointment_booked", "referral")

    assert (await anon_client.get("/tracking/stats")).status_code == 401
    stats = (await client.get("/tracking/stats")).json()
    assert stats["by_status"] == {"touchpoint": 1, "unmapped": 3}
    assert {(u["event"], u["count"]) for u in stats["unmapped_events"]} == {
        ("Order Completed", 1),
        ("Viewed Pricing", 1),
        ("viewed  pricing", 1),
    }
    assert list(stats["by_write_key"].values()) == [4]
    assert REFERRAL_KEY not in str(stats)


async def test_the_same_batch_twice_at_once_is_stored_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    who = {"userId": "u-7", "context": {"traits": {"email": "race@example.com"}}}
    body = {"batch": [track(f"race-{i}", "Signed Up", **who) for i in range(5)]}
    first, second = await asyncio.gather(
        send(client, "/v1/batch", body), send(client, "/v1/batch", body)
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert sorted([first.json()["accepted"], second.json()["accepted"]]) == [0, 5]
    assert await count(engine, TrackingMessage) == 5
    assert await count(engine, FunnelEvent) == 5
