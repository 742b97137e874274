"""/v1 and an erased person: their ids and messages go with the erasure; later messages
of theirs are answered 200, counted as dropped and stored nowhere (both backends)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead, TrackingIdentity, TrackingMessage
from signup_sync.settings import Settings, load_settings
from tests.conftest import TOKEN
from tests.test_tracking_api import WRITE_KEY, basic

EMAIL = "erin.tracked@example.com"
PHONE = "+1 305 555 0177"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        webhook_worker_enabled=False,
        segment_write_keys=WRITE_KEY,
        segment_event_map='{"Demo Booked": "appointment_booked"}',
    )


async def v1(client: httpx.AsyncClient, kind: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/v1/{kind}", json=body, headers=basic(WRITE_KEY))


async def count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(model).where(*where)
        return int(await conn.scalar(query) or 0)


async def stored_text(engine: AsyncEngine) -> str:
    """Every tracking row as text (payloads, ids, emails)."""
    async with engine.connect() as conn:
        messages = (await conn.execute(select(TrackingMessage))).all()
        identities = (await conn.execute(select(TrackingIdentity))).all()
    return repr(messages) + repr(identities)


def identify(n: int, email: str = EMAIL, **extra: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"id-{n}",
        "anonymousId": f"anon-{n}",
        "userId": f"user-{n}",
        "traits": {"email": email.upper(), "phone": PHONE, "firstName": "Erin"},
        "timestamp": "2026-06-03T10:00:00Z",
        **extra,
    }


def demo(n: int, **ids: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"demo-{n}",
        "event": "Demo Booked",
        "timestamp": "2026-06-03T10:05:00Z",
        **ids,
    }


async def test_erasure_removes_tracking_ids_and_messages_and_later_calls_store_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # Erin: an anonymous page view, identified, a demo, an alias; Bo stays.
    page = {
        "type": "page",
        "messageId": "p-1",
        "anonymousId": "anon-1",
        "timestamp": "2026-06-03T09:00:00Z",
        "context": {"page": {"url": "https://x.example/?utm_source=ads&utm_campaign=c1"}},
    }
    assert (await v1(client, "page", page)).status_code == 200
    assert (await v1(client, "identify", identify(1))).status_code == 200
    assert (await v1(client, "track", demo(1, userId="user-1"))).status_code == 200
    alias = {"type": "alias", "messageId": "al-1", "previousId": "user-1", "userId": EMAIL}
    assert (await v1(client, "alias", alias)).status_code == 200
    bo = identify(9, email="bo@example.com", traits={"email": "bo@example.com"})
    assert (await v1(client, "identify", bo)).status_code == 200
    assert await count(engine, FunnelEvent) == 2

    r = await client.post("/privacy/erase", json={"email": EMAIL, "phone": PHONE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leads_deleted"] == 1
    assert body["tracking_messages_deleted"] == 4
    assert body["tracking_identities_deleted"] >= 3
    assert EMAIL not in (await stored_text(engine)).lower()
    assert "5550177" not in await stored_text(engine)
    assert await count(engine, TrackingMessage) == 1  # Bo's identify
    assert await count(engine, TrackingIdentity, TrackingIdentity.value == "user-9") == 1

    # Later: every kind of message naming Erin is 200, dropped, stored nowhere.
    later = [
        ("identify", identify(2)),
        ("identify", identify(3, userId=EMAIL)),
        ("track", demo(2, userId="user-2", properties={"email": EMAIL})),
        ("alias", {"type": "alias", "messageId": "al-2", "previousId": "anon-7", "userId": EMAIL}),
        ("track", demo(3, anonymousId="a-3", context={"traits": {"phone": "+1 (305) 555-0177"}})),
    ]
    for kind, message in later:
        r = await v1(client, kind, message)
        assert r.status_code == 200, (kind, r.text)
        assert (r.json()["dropped"], r.json()["accepted"]) == (1, 0), kind
    # In one batch: the identify and the touch it would have attached (the old 500).
    batch = {"batch": [identify(4), demo(4, anonymousId="anon-4")]}
    r = await v1(client, "batch", batch)
    assert r.status_code == 200, r.text
    assert r.json()["dropped"] == 1 and r.json()["pending"] == 1  # the touch stays anonymous
    text = (await stored_text(engine)).lower()
    assert EMAIL not in text and "5550177" not in text and "555-0177" not in text
    assert await count(engine, Lead, Lead.email == EMAIL) == 0
    assert await count(engine, TrackingIdentity, TrackingIdentity.email == EMAIL) == 0


async def test_a_touch_whose_phone_was_erased_is_dropped_not_a_500(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    r = await client.post("/privacy/erase", json={"phone": PHONE})
    assert r.status_code == 200
    # A new email with the erased phone is the erased person (as everywhere else).
    message = demo(
        5, userId="u-5", context={"traits": {"email": "new.erin@example.com", "phone": PHONE}}
    )
    r = await v1(client, "track", message)
    assert r.status_code == 200, r.text
    assert r.json()["dropped"] == 1
    assert await count(engine, TrackingMessage) == 0
    assert await count(engine, TrackingIdentity) == 0
    assert await count(engine, Lead) == 0
