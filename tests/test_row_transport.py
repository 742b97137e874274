"""Rows reach the tables exactly as built, whatever the path carries them (on PostgreSQL one
JSON document per statement; on SQLite bound parameters): awkward text, metadata and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.db.session import run_in_transaction
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest

AWKWARD = 'O\'Brien "quoted" \\ back\\slash \n tab\t é ü 中文 🎉 ' + "x" * 150
METADATA: dict[str, Any] = {
    "nested": {"list": [1, 2.5, None, True, "é"], "empty": {}},
    "quote": '"',
    "backslash": "\\u0041 stays text",
    "big": 2**53 + 1,
}


def _record(i: int, **extra: Any) -> EventRecord:
    values: dict[str, Any] = {
        "source_type": "direct_signup",
        "event_type": "lead_captured",
        "occurred_at": datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
        "email": f"row{i}@example.com",
        "first_name": AWKWARD[:200],
        "external_id": f"row-{i}",
        "utm_campaign": AWKWARD[:255],
    }
    return EventRecord(**(values | extra))


async def _stored(session_factory: Any) -> tuple[list[Any], list[Any]]:
    async with session_factory() as session:
        events = (await session.execute(select(FunnelEvent).order_by(FunnelEvent.id))).scalars()
        leads = (await session.execute(select(Lead).order_by(Lead.id))).scalars()
        return list(events), list(leads)


async def test_batch_and_single_rows_arrive_unchanged(session_factory: Any) -> None:
    batch = [_record(i, metadata=METADATA if i % 2 else None) for i in range(3)]
    await run_in_transaction(session_factory, lambda s: ingest(s, batch))
    one = [_record(9, metadata=METADATA)]
    await run_in_transaction(session_factory, lambda s: ingest(s, one))

    events, leads = await _stored(session_factory)
    assert [e.external_id for e in events] == ["row-0", "row-1", "row-2", "row-9"]
    for event in events:
        # An offset time is stored as the same instant in UTC.
        assert event.occurred_at == datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
        assert event.utm_campaign == AWKWARD[:255]
        with_metadata = event.external_id in ("row-1", "row-9")
        assert event.event_metadata == (METADATA if with_metadata else None)
    assert {lead.first_name for lead in leads} == {AWKWARD[:200]}
    assert {lead.first_seen_at for lead in leads} == {datetime(2026, 3, 2, 4, 30, tzinfo=UTC)}
