"""Erasure (POST /privacy/erase, DELETE /leads/{id}) and the tombstones ingestion honours."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.app import create_app
from signup_sync.db.models import (
    AttributionCredit,
    FunnelConversion,
    FunnelEvent,
    Lead,
    PrivacyHashKey,
    PrivacyTombstone,
)
from signup_sync.db.session import create_session_factory, unit_of_work
from signup_sync.events.records import EventRecord
from signup_sync.events.service import IngestOutcome, ingest
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from signup_sync.sync.schemas import SyncOptions
from tests.conftest import TOKEN
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.helpers import LOCAL_SETTINGS, SEED_EVENT
from tests.sync_fakes import add_source

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ANA = "ana.privacy@example.com"
ANA_PHONE = "+13055550188"
BEN = "ben@example.com"
EB_TOKEN_ENV = "SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN"
ORG = "215487369012"


def rec(n: int, email: str | None, phone: str | None = None, **extra: Any) -> EventRecord:
    return EventRecord(
        source_type="poshvip",
        event_type="event_registered",
        occurred_at=T0 + timedelta(hours=n),
        email=email,
        phone=phone,
        phone_e164=phone,
        external_id=f"posh:order:{n}",
        **extra,
    )


async def ingest_now(engine: AsyncEngine, *records: EventRecord) -> list[IngestOutcome]:
    async with unit_of_work(create_session_factory(engine)) as session:
        return await ingest(session, list(records))


async def count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with create_session_factory(engine)() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(query)).scalar_one())


async def ana_with_history(client: httpx.AsyncClient, engine: AsyncEngine) -> int:
    """Ana: a phone-keyed ticket, then events and a conversion by email (phone joins)."""
    await ingest_now(engine, rec(1, None, ANA_PHONE))
    await ingest_now(engine, rec(2, ANA, ANA_PHONE))
    r = await client.post("/funnel/event", json={**SEED_EVENT, "email": ANA})
    assert r.status_code == 201
    r = await client.post("/funnel/conversion", json={"email": ANA, "value": "49.00"})
    assert r.status_code == 201
    return int(r.json()["lead_id"])


async def test_erase_by_email_deletes_everything_and_refuses_the_person_later(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    lead_id = await ana_with_history(client, engine)
    await client.post("/funnel/event", json={**SEED_EVENT, "email": BEN})
    assert await count(engine, FunnelEvent, FunnelEvent.lead_id == lead_id) == 4
    assert await count(engine, AttributionCredit, AttributionCredit.lead_id == lead_id) > 0

    r = await client.post("/privacy/erase", json={"email": "  Ana.Privacy@Example.com "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leads_deleted"] == 1
    assert (body["events_deleted"], body["conversions_deleted"]) == (4, 1)
    assert body["tombstones_added"] == 2  # the email and the phone the lead held
    assert ANA not in r.text and "5550188" not in r.text

    assert (await client.get(f"/leads/{lead_id}")).status_code == 404
    for model in (Lead, FunnelEvent, FunnelConversion, AttributionCredit):
        column = model.id if model is Lead else model.lead_id
        assert await count(engine, model, column == lead_id) == 0
    assert await count(engine, Lead) == 1  # Ben stays

    # Re-POST: 200, nothing stored, a clear message.
    r = await client.post("/funnel/event", json={**SEED_EVENT, "email": ANA, "external_id": "n"})
    assert r.status_code == 200
    assert r.json()["erased"] is True and r.json()["event_id"] is None
    assert "erased" in r.json()["message"]
    r = await client.post(
        "/funnel/events/batch",
        json={"events": [{**SEED_EVENT, "email": ANA}, {**SEED_EVENT, "email": "new@example.com"}]},
    )
    assert r.status_code == 200
    assert (r.json()["erased"], r.json()["accepted"]) == (1, 1)
    assert [i["status"] for i in r.json()["results"]] == ["erased", "accepted"]
    r = await client.post("/funnel/conversion", json={"email": ANA, "conversion_type": "trial"})
    assert r.status_code == 200 and r.json()["erased"] is True
    assert r.json()["conversion_id"] is None
    # The phone alone, or with a new email, is the same person.
    outcomes = await ingest_now(
        engine, rec(9, None, ANA_PHONE), rec(10, "x@example.com", ANA_PHONE)
    )
    assert [o.status for o in outcomes] == ["erased", "erased"]
    assert await count(engine, Lead, Lead.email == ANA) == 0
    assert await count(engine, Lead, Lead.phone_e164 == ANA_PHONE) == 0

    # Erasing again is harmless.
    again = (await client.post("/privacy/erase", json={"email": ANA})).json()
    assert (again["leads_deleted"], again["tombstones_added"]) == (0, 0)


async def test_erase_by_phone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await ingest_now(engine, rec(1, None, ANA_PHONE), rec(2, None, "+447946000111"))
    r = await client.post("/privacy/erase", json={"phone": "(305) 555-0188", "phone_region": "us"})
    assert r.status_code == 200, r.text
    assert (r.json()["leads_deleted"], r.json()["tombstones_added"]) == (1, 1)
    assert await count(engine, Lead) == 1
    [outcome] = await ingest_now(engine, rec(3, None, ANA_PHONE))
    assert outcome.status == "erased"
    # Unknown people can be erased ahead: their first record is refused.
    r = await client.post("/privacy/erase", json={"email": "later@example.com"})
    assert r.json()["leads_deleted"] == 0 and r.json()["tombstones_added"] == 1
    assert "No data was held" in r.json()["message"]
    r = await client.post("/funnel/event", json={**SEED_EVENT, "email": "later@example.com"})
    assert r.status_code == 200 and r.json()["erased"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"phone": "555-0188"}, "phone"),  # no country code, no region
        ({"phone": "+1 305 555 0188", "phone_region": "USA"}, "phone_region"),
        ({"email": "not-an-email"}, "email"),
    ],
)
async def test_erase_input_errors_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await client.post("/privacy/erase", json=body)
    assert r.status_code == 422
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_delete_lead(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    lead_id = await ana_with_history(client, engine)
    r = await client.delete(f"/leads/{lead_id}")
    assert r.status_code == 200, r.text
    assert r.json()["leads_deleted"] == 1 and r.json()["tombstones_added"] == 2
    assert (await client.get(f"/leads/{lead_id}")).status_code == 404
    assert (await client.delete(f"/leads/{lead_id}")).status_code == 404
    r = await client.post("/funnel/event", json={**SEED_EVENT, "email": ANA})
    assert r.status_code == 200 and r.json()["erased"] is True
    assert await count(engine, Lead) == 0
    assert await count(engine, FunnelEvent) == 0


async def test_tombstones_hold_keyed_hashes_only(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await ana_with_history(client, engine)
    await client.post("/privacy/erase", json={"email": ANA})
    async with create_session_factory(engine)() as session:
        stones = (await session.execute(select(PrivacyTombstone))).scalars().all()
        [key] = (await session.execute(select(PrivacyHashKey))).scalars().all()
    assert key.secret is not None  # generated (no PRIVACY_HASH_KEY) and stored
    secret = bytes.fromhex(key.secret)
    expected = {
        hmac.new(secret, f"email:{ANA}".encode(), hashlib.sha256).hexdigest(): "email",
        hmac.new(secret, f"phone:{ANA_PHONE}".encode(), hashlib.sha256).hexdigest(): "phone",
    }
    assert {s.identifier_hash: s.kind for s in stones} == expected
    for stone in stones:
        text = repr((stone.id, stone.kind, stone.identifier_hash, stone.created_at))
        for raw in (ANA, "ana.privacy", ANA_PHONE, "3055550188", "5550188"):
            assert raw not in text
        # Not a plain (unkeyed) hash of the identifier either.
        assert stone.identifier_hash not in {
            hashlib.sha256(v.encode()).hexdigest() for v in (ANA, ANA_PHONE)
        }


@asynccontextmanager
async def client_with(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http,
    ):
        yield http


async def test_configured_key_is_used_and_a_changed_key_is_refused(
    settings: Settings, engine: AsyncEngine
) -> None:
    key = "k" * 32
    keyed = settings.model_copy(update={"privacy_hash_key": SecretStr(key)})
    async with client_with(keyed) as client:
        await client.post("/funnel/event", json={**SEED_EVENT, "email": ANA})
        assert (await client.post("/privacy/erase", json={"email": ANA})).status_code == 200
        r = await client.post("/funnel/event", json={**SEED_EVENT, "email": ANA})
        assert r.json()["erased"] is True
    async with create_session_factory(engine)() as session:
        [row] = (await session.execute(select(PrivacyHashKey))).scalars().all()
        [stone] = (await session.execute(select(PrivacyTombstone))).scalars().all()
    assert row.secret is None  # the configured key is never stored
    digest = hmac.new(key.encode(), f"email:{ANA}".encode(), hashlib.sha256).hexdigest()
    assert stone.identifier_hash == digest

    other = settings.model_copy(update={"privacy_hash_key": SecretStr("z" * 32)})
    for changed in (other, settings):  # a different key, or none at all
        async with client_with(changed) as client:
            r = await client.post("/funnel/event", json={**SEED_EVENT, "email": BEN})
            assert r.status_code == 503
            assert r.json()["error"] == "privacy_key_mismatch"
            assert "PRIVACY_HASH_KEY" in r.json()["detail"]
            assert key not in r.text
    assert await count(engine, Lead, Lead.email == BEN) == 0


# --- a real sync after an erasure --------------------------------------------------------------


async def test_resync_after_erasure_skips_the_person_as_erased(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switch, base_url = eb_server
    switch.use(FakeEventbrite(count=60))
    monkeypatch.setenv(EB_TOKEN_ENV, EB_TOKEN)
    factory = create_session_factory(engine)
    config = {"base_url": base_url, "organization_id": ORG, "token_env": EB_TOKEN_ENV}
    source_id = await add_source(factory, "Rooftop", source_type="eventbrite", config=config)
    retry = RetryPolicy(wait_scale=0)
    first = await run_sync(factory, source_id, retry=retry, settings=LOCAL_SETTINGS)
    assert first.status == "success"
    person = "person00010@example.com"  # attendee 10: registered and checked in
    assert await count(engine, Lead, Lead.email == person) == 1

    r = await client.post("/privacy/erase", json={"email": person})
    assert r.json()["leads_deleted"] == 1 and r.json()["events_deleted"] == 2

    again = await run_sync(
        factory, source_id, SyncOptions(force=True), retry=retry, settings=LOCAL_SETTINGS
    )
    assert again.status == "success"
    assert again.details["skip_reasons"]["erased"] == 1
    assert again.leads_skipped == first.leads_skipped + 1
    assert again.leads_created == 0
    assert await count(engine, Lead, Lead.email == person) == 0


async def test_an_ingestion_during_an_erasure_waits_and_is_refused(
    engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time; the advisory lock is PostgreSQL's")
    from signup_sync.privacy.schemas import ErasureIn
    from signup_sync.privacy.service import erase

    factory = create_session_factory(engine)
    await ingest_now(engine, rec(1, ANA))
    async with factory() as eraser:
        await erase(eraser, ErasureIn(email=ANA))  # holds the lock until it commits
        racing = asyncio.create_task(ingest_now(engine, rec(2, ANA)))
        await asyncio.sleep(0.2)
        assert not racing.done()  # waits for the erasure instead of reading stale tombstones
        await eraser.commit()
    [outcome] = await asyncio.wait_for(racing, timeout=30)
    assert outcome.status == "erased"
    assert await count(engine, Lead) == 0
