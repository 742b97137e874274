"""Zoom attendance links to registrants by ``registrant_id`` first, then email (issue 14,
finding 2), and a registrant's status change reaches its stored event: through the real
engine (``run_sync``), a fake Zoom over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from signup_sync.db.models import FunnelEvent, FunnelSource, Lead
from signup_sync.sources.base import RetryPolicy
from signup_sync.sources.zoom import ZoomConfig
from signup_sync.sources.zoom_records import person_key
from signup_sync.sync.runner import run_sync
from signup_sync.sync.schemas import SyncOptions
from signup_sync.sync.stored import StoredLookup
from signup_sync.webhooks.process import build, context
from tests.fakes import zoom as zoom_fake
from tests.fakes.zoom import U1, W1, FakeZoom, participant
from tests.helpers import LOCAL_SETTINGS
from tests.sync_fakes import add_source

RUN_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LEE, PAT, DEE = "Lee0000000000000000001", "Pat0000000000000000001", "Dee0000000000000000001"
RETRY = RetryPolicy(wait_scale=0)


@pytest.fixture
def zoom(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeZoom, str]]:
    monkeypatch.setattr("signup_sync.sync.start.utcnow", lambda: RUN_AT)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID", zoom_fake.CLIENT_ID)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET", zoom_fake.CLIENT_SECRET)
    fake = zoom_fake.standard_zoom()
    with zoom_fake.serve(fake.app()) as url:
        yield fake, url


def config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": f"{url}/v2",
        "token_url": f"{url}/oauth/token",
        "account_id": zoom_fake.ACCOUNT_ID,
        "webinar_ids": [W1],
        "page_size": 2,
        **extra,
    }


async def leads(engine: AsyncEngine) -> dict[str, int]:
    async with async_sessionmaker(engine)() as session:
        rows = await session.execute(select(Lead.email, Lead.stage))
        return {email: stage for email, stage in rows.all()}


async def attended(engine: AsyncEngine) -> dict[str, str]:
    """external id -> lead email of every webinar_attended event."""
    async with async_sessionmaker(engine)() as session:
        rows = await session.execute(
            select(FunnelEvent.external_id, Lead.email)
            .join(Lead, Lead.id == FunnelEvent.lead_id)
            .where(FunnelEvent.event_type == "webinar_attended")
        )
        return {str(x): str(e) for x, e in rows.all()}


def at(minute: int) -> str:
    return f"2024-06-12T17:{minute:02d}:00Z"


async def test_attendance_joins_the_registrant_by_id_whatever_the_email(
    engine: AsyncEngine, zoom: tuple[FakeZoom, str]
) -> None:
    fake, url = zoom
    # Lee joined from another address; Pat (pending) joined with no email at all; a guest
    # whose registrant id is unknown keeps their own email.
    fake.participants[U1] += [
        participant("Lee at work", "lee@work.example", at(10), at(40), registrant_id=LEE),
        participant("Pat's phone", "", at(12), at(30), registrant_id=PAT),
        participant("Guest", "guest@example.com", at(14), at(30), registrant_id="Unknown000001"),
    ]
    factory = async_sessionmaker(engine, expire_on_commit=False)
    source_id = await add_source(factory, source_type="zoom", config=config(url))
    result = await run_sync(factory, source_id, SyncOptions(), retry=RETRY, settings=LOCAL_SETTINGS)
    assert result.status == "success", result.error_messages

    stages = await leads(engine)
    assert "lee@work.example" not in stages  # no second lead at stage 3
    assert stages["lee@example.org"] == 3
    assert stages["pat.pending@example.com"] == 3
    assert stages["guest@example.com"] == 3
    events = await attended(engine)
    lee_key = f"webinar_instance:{U1}:person:{person_key('lee@example.org')}"
    pat_key = f"webinar_instance:{U1}:person:{person_key('pat.pending@example.com')}"
    assert events[lee_key] == "lee@example.org"
    assert events[pat_key] == "pat.pending@example.com"
    # Only the anonymous device without a registrant id is still skipped for no email.
    assert "no email (guest or anonymous participant)" in str(result.details)


async def test_a_second_run_and_the_webhook_give_the_same_event(
    engine: AsyncEngine, zoom: tuple[FakeZoom, str]
) -> None:
    fake, url = zoom
    fake.participants[U1].append(
        participant("Lee at work", "lee@work.example", at(10), at(40), registrant_id=LEE)
    )
    factory = async_sessionmaker(engine, expire_on_commit=False)
    source_id = await add_source(factory, source_type="zoom", config=config(url))
    await run_sync(factory, source_id, SyncOptions(), retry=RETRY, settings=LOCAL_SETTINGS)
    before = await attended(engine)
    again = await run_sync(
        factory, source_id, SyncOptions(force=True), retry=RETRY, settings=LOCAL_SETTINGS
    )
    assert again.leads_created == 0
    assert await attended(engine) == before

    # participant_joined for Lee, from the work address: the sync's event, Lee's lead.
    body = {
        "event": "webinar.participant_joined",
        "event_ts": 1718211000000,
        "payload": {
            "object": {
                "id": W1,
                "uuid": U1,
                "start_time": "2024-06-12T17:00:00Z",
                "participant": {
                    "user_name": "Lee at work",
                    "email": "lee@work.example",
                    "registrant_id": LEE,
                    "join_time": at(10),
                },
            }
        },
    }

    async with factory() as session:
        source = await session.get(FunnelSource, source_id)
    assert source is not None
    stored = StoredLookup(factory, source_id=source_id, source_type="zoom")
    ctx = context(
        source, ZoomConfig.model_validate(config(url)), transport=None, retry=RETRY, stored=stored
    )
    built = await build(orjson.dumps(body), ctx)
    [event] = built.events
    assert event.email == "lee@example.org"
    assert event.external_id == f"webinar_instance:{U1}:person:{person_key('lee@example.org')}"


async def test_denied_then_approved_makes_the_registration_count(
    engine: AsyncEngine, zoom: tuple[FakeZoom, str]
) -> None:
    fake, url = zoom
    factory = async_sessionmaker(engine, expire_on_commit=False)
    source_id = await add_source(factory, source_type="zoom", config=config(url))
    await run_sync(factory, source_id, SyncOptions(), retry=RETRY, settings=LOCAL_SETTINGS)
    dee = f"webinar:{W1}:registrant:{DEE}"
    async with factory() as session:
        status = await session.scalar(
            select(FunnelEvent.status).where(FunnelEvent.external_id == dee)
        )
    assert status == "denied"

    row = next(r for r in fake.registrants[("webinar", W1)] if r["id"] == DEE)
    row["status"] = "approved"
    result = await run_sync(
        factory, source_id, SyncOptions(force=True), retry=RETRY, settings=LOCAL_SETTINGS
    )
    assert result.leads_updated >= 1
    async with factory() as session:
        status = await session.scalar(
            select(FunnelEvent.status).where(FunnelEvent.external_id == dee)
        )
    assert status == "active"
