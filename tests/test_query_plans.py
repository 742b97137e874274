"""The queries behind one event and one conversion use indexes, never a scan of events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.bulk import existing_events_clause
from signup_sync.db.models import FunnelEvent


async def _plan(engine: AsyncEngine, stmt) -> str:
    compiled = stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # Empty tables make any plan cheap; forbid seq scans so only a usable index passes.
            await conn.execute(text("SET enable_seqscan = off"))
            rows = await conn.execute(text(f"EXPLAIN {compiled}"))
        else:
            rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        return "\n".join(" ".join(str(c) for c in row) for row in rows.all())


@pytest.mark.parametrize(
    "where",
    [
        existing_events_clause([("zoom", "registrant:1", "webinar_registered")], []),
        existing_events_clause(
            [("zoom", "r:1", "webinar_registered"), ("zoom", "r:2", "webinar_registered")], []
        ),
        existing_events_clause([], ["idem-1"]),
    ],
)
async def test_duplicate_lookup_uses_an_index(engine: AsyncEngine, where) -> None:
    plan = await _plan(engine, select(FunnelEvent.id).where(where))
    assert "Seq Scan on funnel_events" not in plan
    assert "SCAN funnel_events" not in plan.replace("USING INDEX", "")


async def test_touchpoints_of_one_lead_use_an_index(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    stmt = (
        select(FunnelEvent.id)
        .where(
            FunnelEvent.lead_id == 1,
            FunnelEvent.occurred_at >= now - timedelta(days=90),
            FunnelEvent.occurred_at <= now,
        )
        .order_by(FunnelEvent.occurred_at)
    )
    plan = await _plan(engine, stmt)
    assert "Seq Scan on funnel_events" not in plan
    assert "SCAN funnel_events" not in plan  # SQLite: SEARCH ... USING INDEX
    assert "index" in plan.lower()


async def test_plans_are_seeks_not_full_index_scans(engine: AsyncEngine) -> None:
    where = existing_events_clause(
        [("zoom", "r:1", "webinar_registered"), ("eventbrite", "a:2", "event_registered")], ["k"]
    )
    plan = await _plan(engine, select(FunnelEvent.id).where(where))
    if engine.dialect.name == "sqlite":
        assert "SEARCH funnel_events" in plan
        assert "SCAN funnel_events" not in plan
    else:
        assert "Index Cond" in plan
