"""POST /funnel/events/batch: per-item answers, one transaction, size limits."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead
from tests.helpers import SEED_EVENT, event


async def _count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def test_items_are_answered_in_order(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await client.post("/funnel/event", json={**SEED_EVENT, "external_id": "stored-before"})
    items = [
        event(
            "a@example.com", "zoom", "webinar_registered", "2026-01-01T10:00:00Z", external_id="r1"
        ),
        {**SEED_EVENT, "email": "bad"},
        {**SEED_EVENT, "external_id": "stored-before"},
        event(
            "A@example.com", "zoom", "webinar_attended", "2026-01-02T10:00:00Z", external_id="p1"
        ),
        event(
            "a@example.com", "zoom", "webinar_registered", "2026-01-01T10:00:00Z", external_id="r1"
        ),
        {"source_type": "nope", "event_type": "converted"},
    ]
    r = await client.post("/funnel/events/batch", json={"events": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["status"] for x in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
        "duplicate",
        "rejected",
    ]
    assert [x["index"] for x in body["results"]] == list(range(6))
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 2, 2)
    results = body["results"]
    assert results[4]["event_id"] == results[0]["event_id"]  # repeat inside the batch
    assert results[0]["lead_id"] == results[3]["lead_id"]
    assert {e["field"] for e in results[1]["errors"]} == {"email"}
    assert {"source_type", "email"} <= {e["field"] for e in results[5]["errors"]}
    assert await _count(engine, FunnelEvent) == 3
    assert await _count(engine, Lead) == 2


async def test_oversized_batch_is_refused_before_anything_is_written(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    items = [{**SEED_EVENT, "email": f"p{i}@example.com"} for i in range(1001)]
    r = await client.post("/funnel/events/batch", json={"events": items})
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "events"
    assert await _count(engine, FunnelEvent) == 0


async def test_full_batch_of_1000_is_one_transaction(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    items = [
        {**SEED_EVENT, "email": f"p{i % 400}@example.com", "external_id": f"b{i}"}
        for i in range(1000)
    ]
    r = await client.post("/funnel/events/batch", json={"events": items})
    assert r.status_code == 200
    assert r.json()["accepted"] == 1000
    assert await _count(engine, FunnelEvent) == 1000
    assert await _count(engine, Lead) == 400
    again = await client.post("/funnel/events/batch", json={"events": items})
    assert again.json()["duplicates"] == 1000
    assert await _count(engine, FunnelEvent) == 1000


async def test_batch_body_must_be_an_object_with_events(client: httpx.AsyncClient) -> None:
    r = await client.post("/funnel/events/batch", json=[SEED_EVENT])
    assert r.status_code == 422
    r = await client.post("/funnel/events/batch", json={"events": "x"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "events"
