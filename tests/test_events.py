"""POST /funnel/event: the seed example, validation, normalisation, leads and idempotency."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead
from tests.helpers import SEED_EVENT, error_fields, event, post_event


async def count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def test_seed_curl_example_works_as_written(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/funnel/event",
        content=(
            '{\n    "source_type": "easyappointments",\n    "event_type": "appointment_booked",\n'
            '    "email": "test@example.com",\n    "first_name": "John",\n'
            '    "last_name": "Doe"\n  }'
        ),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["event_type"] == "appointment_booked"
    assert body["stage"] == 2
    assert body["email"] == "test@example.com"
    assert body["duplicate"] is False
    assert body["event_id"] > 0 and body["lead_id"] > 0
    assert body["created_at"] and body["message"]


@pytest.mark.parametrize(
    ("patch", "field", "needle"),
    [
        ({"source_type": "facebook"}, "source_type", "'direct_signup'"),
        ({"event_type": "clicked"}, "event_type", "'signup_completed'"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": "   "}, "email", "empty"),
        ({"occurred_at": "yesterday"}, "occurred_at", "datetime"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "future"),
        ({"metadata": ["a"]}, "metadata", "dictionary"),
        ({"metadata": {"x": "y" * 20000}}, "metadata", "bytes"),
        (
            {"metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}},
            "metadata",
            "deeper",
        ),
        ({"utm_source": "x" * 300}, "utm_source", "255"),
        ({"unknown_field": 1}, "unknown_field", "not permitted"),
    ],
)
async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, engine: AsyncEngine, patch: dict, field: str, needle: str
) -> None:
    r = await client.post("/funnel/event", json={**SEED_EVENT, **patch})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert field in error_fields(r)
    messages = " ".join(e["message"] for e in body["errors"] if e["field"] == field)
    assert needle in messages
    assert await count(engine, FunnelEvent) == 0
    assert await count(engine, Lead) == 0


async def test_missing_required_fields_are_listed(client: httpx.AsyncClient) -> None:
    r = await client.post("/funnel/event", json={})
    assert r.status_code == 422
    assert {"source_type", "event_type", "email"} <= error_fields(r)


async def test_malformed_json_is_a_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/funnel/event", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"


async def test_values_are_normalised(client: httpx.AsyncClient, session_factory) -> None:
    body = await post_event(
        client,
        {
            **SEED_EVENT,
            "email": "  John.Doe+Tag@Example.COM ",
            "utm_source": "  Newsletter ",
            "utm_campaign": "Spring-Launch",
            "occurred_at": "2026-03-01T10:00:00",  # naive: UTC
            "first_name": "  ",
        },
    )
    assert body["email"] == "john.doe+tag@example.com"
    assert body["occurred_at"].startswith("2026-03-01T10:00:00")
    async with session_factory() as session:
        stored = await session.get(FunnelEvent, body["event_id"])
        lead = await session.get(Lead, body["lead_id"])
    assert stored.utm_source == "newsletter"
    assert stored.utm_campaign == "spring-launch"
    assert stored.occurred_at.isoformat() == "2026-03-01T10:00:00+00:00"
    assert lead.first_name is None  # blank is no value


async def test_offset_times_are_stored_in_utc(client: httpx.AsyncClient) -> None:
    body = await post_event(client, {**SEED_EVENT, "occurred_at": "2026-03-01T12:00:00+02:00"})
    assert body["occurred_at"].startswith("2026-03-01T10:00:00")


async def test_one_lead_per_person_keeps_first_last_and_furthest_stage(
    client: httpx.AsyncClient, session_factory, engine: AsyncEngine
) -> None:
    a = await post_event(
        client,
        event(
            "ana@example.com",
            "zoom",
            "webinar_attended",
            "2026-02-10T10:00:00Z",
            utm_campaign="webinar-feb",
        ),
    )
    b = await post_event(
        client,
        event(
            "ANA@example.com",
            "eventbrite",
            "event_registered",
            "2026-02-01T09:00:00Z",
            first_name="Ana",
            utm_campaign="launch",
        ),
    )
    c = await post_event(
        client,
        event(
            "ana@example.com",
            "manual",
            "lead_captured",
            "2026-02-20T09:00:00Z",
            first_name="Other",
            last_name="Müller",
        ),
    )
    assert a["lead_id"] == b["lead_id"] == c["lead_id"]
    assert await count(engine, Lead) == 1
    async with session_factory() as session:
        lead = await session.get(Lead, a["lead_id"])
    assert lead.first_name == "Ana"  # filled once, not overwritten
    assert lead.last_name == "Müller"
    assert lead.stage == 3  # furthest, not latest
    assert lead.first_seen_at.isoformat() == "2026-02-01T09:00:00+00:00"
    assert lead.last_seen_at.isoformat() == "2026-02-20T09:00:00+00:00"
    assert lead.first_touch_source_type == "eventbrite"  # the earliest event, though sent second
    assert lead.first_touch_utm_campaign == "launch"


async def test_same_external_id_is_a_duplicate_that_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {**SEED_EVENT, "external_id": "appt-1"}
    first = await client.post("/funnel/event", json=body)
    again = await client.post("/funnel/event", json={**body, "first_name": "Changed"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert await count(engine, FunnelEvent) == 1
    # Same external id but another event type is another event.
    other = await client.post("/funnel/event", json={**body, "event_type": "appointment_completed"})
    assert other.status_code == 201
    assert await count(engine, FunnelEvent) == 2


async def test_idempotency_key_header_returns_the_original(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    headers = {"Idempotency-Key": "req-42"}
    first = await client.post("/funnel/event", json=SEED_EVENT, headers=headers)
    again = await client.post(
        "/funnel/event", json={**SEED_EVENT, "event_type": "lead_captured"}, headers=headers
    )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["event_type"] == "appointment_booked"  # the original event
    assert await count(engine, FunnelEvent) == 1


@pytest.mark.parametrize("mode", ["external_id", "header"])
async def test_concurrent_identical_requests_store_one_row(
    client: httpx.AsyncClient, engine: AsyncEngine, mode: str
) -> None:
    body = {**SEED_EVENT, "email": "race@example.com"}
    headers = {}
    if mode == "external_id":
        body["external_id"] = "race-1"
    else:
        headers["Idempotency-Key"] = "race-key"
    responses = await asyncio.gather(
        *(client.post("/funnel/event", json=body, headers=headers) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201], [r.text for r in responses]
    assert len({r.json()["event_id"] for r in responses}) == 1
    assert await count(engine, FunnelEvent) == 1
    assert await count(engine, Lead) == 1


async def test_events_without_external_id_are_all_kept(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post_event(client, SEED_EVENT)
    await post_event(client, SEED_EVENT)
    assert await count(engine, FunnelEvent) == 2
    assert await count(engine, Lead) == 1


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"utm_term": "a\u0000b"}, "utm_term"),
        ({"first_name": "\u0000"}, "first_name"),
        ({"metadata": {"k": "v\u0000"}}, "metadata"),
        ({"metadata": {"k\u0000": 1}}, "metadata"),
    ],
)
async def test_nul_characters_are_refused_not_a_500(
    client: httpx.AsyncClient, patch: dict, field: str
) -> None:
    # Found by schemathesis: PostgreSQL cannot store NUL in text or jsonb.
    r = await client.post("/funnel/event", json={**SEED_EVENT, **patch})
    assert r.status_code == 422
    assert field in error_fields(r)


async def test_unpaired_surrogates_are_refused(client: httpx.AsyncClient) -> None:
    for patch, field in (
        ('"first_name": "\\ud800"', "first_name"),
        ('"metadata": {"k": "\\udc00"}', "metadata"),
    ):
        body = (
            '{"source_type": "manual", "event_type": "lead_captured", '
            f'"email": "s@example.com", {patch}}}'
        )
        r = await client.post(
            "/funnel/event", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422, r.text
        assert field in error_fields(r)


async def test_times_must_be_iso_strings_not_numbers(client: httpx.AsyncClient) -> None:
    # Found by schemathesis: a bare number was read as a Unix timestamp.
    r = await client.post("/funnel/event", json={**SEED_EVENT, "occurred_at": 1717430400})
    assert r.status_code == 422
    assert "occurred_at" in error_fields(r)
