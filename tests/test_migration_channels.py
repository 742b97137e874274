"""Revision 0002 fills in channels, first-touch channel/item and stage times for rows stored
before it, on SQLite and PostgreSQL, and downgrades cleanly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from signup_sync.db import migrate
from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.db.session import create_engine
from signup_sync.db.types import JSONDoc, UTCDateTime
from signup_sync.settings import load_settings
from signup_sync.upgrade import upgrade as upgrade_schema
from tests.conftest import _create_database, _drop_database, _with_database

# The two tables as revision 0001 has them (only the columns this test writes).
OLD_LEADS = sa.table(
    "funnel_leads",
    *(sa.column(n) for n in ("id", "email", "stage", "first_touch_source_type")),
    *(sa.column(n, UTCDateTime()) for n in ("first_seen_at", "last_seen_at")),
    *(sa.column(n, UTCDateTime()) for n in ("created_at", "updated_at")),
)
OLD_EVENTS = sa.table(
    "funnel_events",
    *(sa.column(n) for n in ("lead_id", "source_type", "event_type", "stage", "status")),
    *(sa.column(n) for n in ("external_id", "utm_source", "utm_medium", "referrer")),
    sa.column("occurred_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
    sa.column("metadata", JSONDoc),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    base = request.getfixturevalue("postgres_url")  # skips when PostgreSQL is not there
    name = f"signup_sync_mig_{uuid.uuid4().hex[:10]}"
    await _create_database(name)
    try:
        yield _with_database(base, name)
    finally:
        await _drop_database(name)


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


EVENTS = [
    # (source_type, event_type, stage, status, day, utm_source, utm_medium, referrer, metadata)
    ("zoom", "webinar_registered", 2, "active", 7, None, None, None,
     {"item": {"kind": "webinar", "id": "w1", "name": "Intro"}}),
    ("direct_signup", "lead_captured", 1, "cancelled", 3, None, None, None, None),
    ("direct_signup", "lead_captured", 1, "active", 5, "google", "cpc", None, None),
    ("zoom", "webinar_attended", 3, "active", 9, None, None, None, None),
    ("direct_signup", "signup_started", 4, "cancelled", 8, None, None, None, None),
    ("direct_signup", "lead_captured", 1, "active", 7, None, None, "https://duckduckgo.com/",
     {"item": {"kind": "event", "id": "e9", "name": "Meetup"}}),
]  # fmt: skip


async def test_upgrade_backfills_and_downgrade_removes(fresh_url: str) -> None:
    engine = create_engine(load_settings(database_url=fresh_url, auto_migrate=False))
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as conn:
            for lead_id, email, first in ((1, "old@ex.com", 5), (2, "two@ex.com", 7)):
                await conn.execute(
                    OLD_LEADS.insert().values(
                        id=lead_id, email=email, stage=3, first_seen_at=at(first),
                        last_seen_at=at(9), first_touch_source_type="direct_signup",
                        created_at=at(5), updated_at=at(9),
                    )
                )  # fmt: skip
            for i, (source, kind, stage, status, day, src, med, ref, meta) in enumerate(EVENTS):
                await conn.execute(
                    OLD_EVENTS.insert().values(
                        lead_id=1 if i < 5 else 2, source_type=source, event_type=kind,
                        stage=stage, status=status, external_id=f"e{i}", utm_source=src,
                        utm_medium=med, referrer=ref, occurred_at=at(day), created_at=at(9),
                        metadata=meta,
                    )
                )  # fmt: skip
        await upgrade_schema(engine)

        async with engine.connect() as conn:
            channels = (
                await conn.execute(
                    sa.select(FunnelEvent.external_id, FunnelEvent.channel).order_by(
                        FunnelEvent.external_id
                    )
                )
            ).all()
            leads = (await conn.execute(sa.select(Lead).order_by(Lead.id))).all()
        assert [tuple(c) for c in channels] == [
            ("e0", "Webinars"),
            ("e1", "Direct"),
            ("e2", "Paid Search"),
            ("e3", "Webinars"),
            ("e4", "Direct"),
            ("e5", "Organic Search"),
        ]
        one, two = leads
        # The first ACTIVE event is the first touch: the cancelled day-3 one is not.
        assert one.first_touch_channel == "Paid Search"
        assert one.first_touch_item is None
        assert [getattr(one, f"stage_{n}_at") for n in range(1, 7)] == [
            at(5), at(7), at(9), None, None, None,
        ]  # fmt: skip
        assert two.first_touch_channel == "Organic Search"
        assert (two.first_touch_item, two.first_touch_item_name) == ("event:e9", "Meetup")
        assert two.stage_1_at == at(7)

        await migrate.downgrade(engine, "0001")
        assert await migrate.current_revision(engine) == "0001"
        await upgrade_schema(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
