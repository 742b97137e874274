"""Funnel metrics from the rollups equal the live queries, and stay equal as data changes.

PostgreSQL only (SQLite always answers live). The live answer is forced by making
``rollup.usable`` say no; every group_by, several cohorts and two attribution models are
compared field by field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from signup_sync import demo
from signup_sync.analytics import rollup
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import GroupBy
from signup_sync.analytics.service import funnel_metrics
from signup_sync.attribution.models import AttributionModel
from signup_sync.db.models import rollup_dirty
from signup_sync.db.session import create_session_factory, unit_of_work
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest

END = datetime(2026, 6, 1, tzinfo=UTC)
COHORTS = [
    CohortFilter(),
    CohortFilter(start=END - timedelta(days=20), end=END - timedelta(days=3)),
    CohortFilter(source_type="zoom"),
    CohortFilter(utm_campaign="brand_search", start=END - timedelta(days=40)),
]


@pytest.fixture
def factory(engine: AsyncEngine, backend: str) -> Any:
    if backend != "postgresql":
        pytest.skip("rollups are PostgreSQL's; SQLite answers from the base tables")
    return create_session_factory(engine)


async def _seed(factory: Any, leads: int = 160) -> None:
    people = list(demo.generate(leads, seed=5, end=END, days=60, extra_touches=1.5))
    for batch in demo.batches(iter(people), 400):
        async with unit_of_work(factory) as session:
            await demo.store(session, batch)


async def _refresh(factory: Any) -> int:
    async with unit_of_work(factory) as session:
        return await rollup.refresh(session)


async def _both(
    session: AsyncSession, cohort: CohortFilter, group_by: GroupBy, model: AttributionModel
) -> tuple[dict[str, Any], dict[str, Any]]:
    assert await rollup.usable(session, cohort)
    fast = (await funnel_metrics(session, cohort, group_by, model)).model_dump()
    original = rollup.usable

    async def never(*_: Any) -> bool:
        return False

    rollup.usable = never  # type: ignore[assignment]
    try:
        live = (await funnel_metrics(session, cohort, group_by, model)).model_dump()
    finally:
        rollup.usable = original  # type: ignore[assignment]
    return fast, live


async def _assert_same(factory: Any) -> None:
    async with factory() as session:
        for cohort in COHORTS:
            for group_by in GroupBy:
                for model in (AttributionModel.FIRST_TOUCH, AttributionModel.TIME_DECAY):
                    fast, live = await _both(session, cohort, group_by, model)
                    assert fast == live, (cohort, group_by, model)


async def test_rollups_answer_exactly_what_the_live_queries_answer(factory: Any) -> None:
    await _seed(factory)
    assert await _refresh(factory) > 0
    await _assert_same(factory)
    async with factory() as session:
        metrics = await funnel_metrics(session, CohortFilter(), GroupBy.SOURCE_TYPE)
    assert metrics.total_leads == 160
    assert metrics.attribution.conversions > 0  # the data has conversions to compare


async def test_writes_mark_their_days_and_a_refresh_catches_up(factory: Any) -> None:
    await _seed(factory, leads=60)
    await _refresh(factory)
    known = next(demo.generate(1, seed=5, end=END, days=60, extra_touches=1.5))
    first = known.events[0]
    earlier = END - timedelta(days=58, hours=3)
    async with unit_of_work(factory) as session:
        await ingest(
            session,
            [
                # A new person, and an earlier touch that moves a known lead's cohort day.
                EventRecord("manual", "lead_captured", earlier, "ann.new@example.com"),
                EventRecord("referral", "referral_received", earlier, known.email),
                # The known lead's first event again, now cancelled: it stops counting.
                EventRecord(
                    first.source_type,
                    first.event_type,
                    first.occurred_at,
                    first.email,
                    external_id=first.external_id,
                    status="cancelled" if first.status == "active" else "active",
                ),
            ],
        )
    async with factory() as session:
        dirty = set((await session.execute(select(rollup_dirty.c.day))).scalars())
        assert {earlier.date(), first.occurred_at.date()} <= dirty
        # A cohort that covers a dirty day is answered live: right even before a refresh.
        assert not await rollup.usable(session, CohortFilter())
        metrics = await funnel_metrics(session, CohortFilter(), GroupBy.CHANNEL)
    assert metrics.total_leads == 61
    assert await _refresh(factory) >= 2
    await _assert_same(factory)


async def test_a_cohort_with_partial_days_or_a_window_is_answered_live(factory: Any) -> None:
    async with factory() as session:
        assert await rollup.usable(session, CohortFilter(start=END))
        assert not await rollup.usable(session, CohortFilter(start=END + timedelta(hours=5)))
        assert not await rollup.usable(session, CohortFilter(conversion_window_days=30))


def test_weighted_median_is_the_middle_value_or_the_mean_of_the_two() -> None:
    assert rollup.weighted_median([]) is None
    assert rollup.weighted_median([(3, 1)]) == 3.0
    assert rollup.weighted_median([(1, 2), (5, 1)]) == 1.0
    assert rollup.weighted_median([(1, 1), (4, 1)]) == 2.5
    assert rollup.weighted_median([(1, 2), (4, 2), (9, 1)]) == 4.0
