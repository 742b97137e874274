"""Simultaneous writers about the same person or record: nothing lost, nothing doubled.

Each test fires many pairs at the same instant through the in-process app (on PostgreSQL a
pool of many connections, so the pairs really overlap) and checks the stored result, on
both backends. After each, every lead still equals the fold of its events.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelConversion, FunnelEvent, Lead, TrackingMessage
from signup_sync.db.session import create_session_factory, run_in_transaction
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.settings import Settings, load_settings
from tests.conftest import TOKEN
from tests.test_fold_invariant import reference_fold

WRITE_KEY = "wk-concurrency-0001"
PAIRS = 40
T0 = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        segment_write_keys=WRITE_KEY,
    )


async def at_once(calls: list[Awaitable[Any]]) -> list[Any]:
    """Start every call, then let them all go at the same instant."""
    gate = asyncio.Event()

    async def held(call: Awaitable[Any]) -> Any:
        await gate.wait()
        return await call

    tasks = [asyncio.ensure_future(held(c)) for c in calls]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks)


async def all_rows(engine: AsyncEngine, model: Any) -> list[Any]:
    async with create_session_factory(engine)() as session:
        return list((await session.execute(select(model))).scalars())


async def assert_folded(engine: AsyncEngine) -> None:
    leads = await all_rows(engine, Lead)
    events = await all_rows(engine, FunnelEvent)
    for lead in leads:
        mine = [e for e in events if e.lead_id == lead.id]
        expected = reference_fold(mine)
        assert {k: getattr(lead, k) for k in expected} == expected, lead.email


def _basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


async def test_page_and_identify_of_one_anonymous_id_at_the_same_instant(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Finding 5: the landing view must attach, whichever request commits first."""

    def page(i: int) -> Awaitable[httpx.Response]:
        body = {
            "type": "page",
            "messageId": f"page-{i}",
            "anonymousId": f"anon-{i}",
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
            "properties": {"url": "https://example.com/?utm_source=ads&utm_medium=cpc"},
            "context": {"campaign": {"name": "spring", "source": "ads", "medium": "cpc"}},
        }
        return client.post("/v1/page", json=body, headers=_basic())

    def identify(i: int) -> Awaitable[httpx.Response]:
        body = {
            "type": "identify",
            "messageId": f"identify-{i}",
            "anonymousId": f"anon-{i}",
            "traits": {"email": f"visitor{i}@example.com"},
        }
        return client.post("/v1/identify", json=body, headers=_basic())

    answers = await at_once([c for i in range(PAIRS) for c in (page(i), identify(i))])
    assert [r.status_code for r in answers] == [200] * (2 * PAIRS)
    pages = [m for m in await all_rows(engine, TrackingMessage) if m.type == "page"]
    assert sorted(m.status for m in pages) == ["touchpoint"] * PAIRS
    leads = await all_rows(engine, Lead)
    assert len(leads) == PAIRS
    assert {lead.first_touch_utm_campaign for lead in leads} == {"spring"}
    await assert_folded(engine)


def _event(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "source_type": "eventbrite",
        "event_type": "event_registered",
        "email": f"guest{i}@example.com",
        "occurred_at": (T0 + timedelta(hours=i)).isoformat(),
        **extra,
    }


async def test_a_webhook_and_a_poll_of_the_same_record(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The same external id twice at once: one event, one lead, one answer says duplicate."""
    calls = [
        client.post("/funnel/event", json=_event(i, external_id=f"attendee:{i}"))
        for i in range(PAIRS)
        for _ in range(2)
    ]
    answers = await at_once(calls)
    assert sorted(r.status_code for r in answers) == [200] * PAIRS + [201] * PAIRS
    assert len(await all_rows(engine, FunnelEvent)) == PAIRS
    assert len(await all_rows(engine, Lead)) == PAIRS
    await assert_folded(engine)


async def test_one_new_person_from_two_sources_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Two events of a new email at once: one lead holding both; first touch the earlier."""
    calls = []
    for i in range(PAIRS):
        calls.append(client.post("/funnel/event", json=_event(i, utm_source="late")))
        early = {**_event(i), "source_type": "zoom", "event_type": "webinar_registered"}
        early["occurred_at"] = (T0 + timedelta(hours=i, minutes=-5)).isoformat()
        calls.append(client.post("/funnel/events/batch", json={"events": [early]}))
    answers = await at_once(calls)
    assert all(r.status_code in (200, 201) for r in answers)
    leads = await all_rows(engine, Lead)
    assert len(leads) == PAIRS
    assert {lead.first_touch_source_type for lead in leads} == {"zoom"}
    assert len(await all_rows(engine, FunnelEvent)) == 2 * PAIRS
    await assert_folded(engine)


async def test_the_same_csv_imported_twice_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    lines = ["email,occurred_at,external_id"]
    lines += [f"row{i}@example.com,{(T0 + timedelta(hours=i)).isoformat()},r{i}" for i in range(30)]
    body = ("\n".join(lines) + "\n").encode()

    def post() -> Awaitable[httpx.Response]:
        return client.post(
            "/import/csv",
            content=body,
            params={"source_type": "manual"},
            headers={"Content-Type": "text/csv"},
        )

    answers = await at_once([post() for _ in range(4)])
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert sum(r.json()["accepted"] for r in answers) == 30
    assert len(await all_rows(engine, FunnelEvent)) == 30
    assert len(await all_rows(engine, Lead)) == 30
    await assert_folded(engine)


async def test_the_same_conversion_twice_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    calls = []
    for i in range(PAIRS // 2):
        body = {"email": f"buyer{i}@example.com", "user_id": f"user-{i}", "value": "10.00"}
        calls += [client.post("/funnel/conversion", json=body) for _ in range(2)]
    answers = await at_once(calls)
    assert all(r.status_code in (200, 201) for r in answers), [r.text for r in answers]
    async with create_session_factory(engine)() as session:
        conversions = await session.scalar(select(func.count()).select_from(FunnelConversion))
    assert conversions == PAIRS // 2
    converted = [e for e in await all_rows(engine, FunnelEvent) if e.event_type == "converted"]
    assert len(converted) == PAIRS // 2
    await assert_folded(engine)


async def test_a_status_change_and_a_new_event_of_one_lead_at_once(engine: AsyncEngine) -> None:
    """A webhook cancels the only registration while a poll adds an attendance: the lead
    ends as the fold of both (the refold reads the other writer's committed event)."""
    factory = create_session_factory(engine)

    def record(i: int, event_type: str, status: str, minutes: int) -> EventRecord:
        return EventRecord(
            source_type="eventbrite",
            event_type=event_type,
            occurred_at=T0 + timedelta(hours=i, minutes=minutes),
            email=f"flip{i}@example.com",
            external_id=f"order:{i}:{event_type}",
            status=status,
        )

    await run_in_transaction(
        factory,
        lambda s: ingest(s, [record(i, "event_registered", "active", 0) for i in range(PAIRS)]),
    )

    def write(rec: EventRecord) -> Awaitable[Any]:
        return run_in_transaction(factory, lambda s: ingest(s, [rec]))

    calls = []
    for i in range(PAIRS):
        calls.append(write(record(i, "event_registered", "refunded", 0)))
        calls.append(write(record(i, "event_attended", "active", 30)))
    await at_once(calls)
    leads = await all_rows(engine, Lead)
    assert len(leads) == PAIRS
    assert {(lead.stage, lead.stage_2_at is not None) for lead in leads} == {(3, True)}
    await assert_folded(engine)


async def test_a_phone_only_buyer_and_the_same_phone_with_an_email_at_once(
    engine: AsyncEngine,
) -> None:
    """Lead creation and the phone join: one lead per person whichever commits first."""
    factory = create_session_factory(engine)

    def record(i: int, email: str | None, minutes: int) -> EventRecord:
        phone = f"+1415555{i:04d}"
        return EventRecord(
            source_type="poshvip",
            event_type="event_registered",
            occurred_at=T0 + timedelta(hours=i, minutes=minutes),
            email=email,
            phone=phone,
            phone_e164=phone,
            external_id=f"order:{i}:{minutes}",
        )

    def write(rec: EventRecord) -> Awaitable[Any]:
        return run_in_transaction(factory, lambda s: ingest(s, [rec]))

    calls = []
    for i in range(PAIRS // 2):
        calls.append(write(record(i, None, 0)))
        calls.append(write(record(i, f"caller{i}@example.com", 5)))
    await at_once(calls)
    leads = await all_rows(engine, Lead)
    events = await all_rows(engine, FunnelEvent)
    assert len(events) == PAIRS
    by_phone = {lead.phone_e164: lead for lead in leads}
    for i in range(PAIRS // 2):
        lead = by_phone[f"+1415555{i:04d}"]
        assert lead.email == f"caller{i}@example.com"
        assert sum(1 for e in events if e.lead_id == lead.id) == 2
    assert len(leads) == PAIRS // 2
    await assert_folded(engine)
