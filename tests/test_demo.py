"""The demo generator (pure, seeded, streaming) and the `signup-sync demo` command."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from signup_sync.cli import app as cli
from signup_sync.db.models import (
    FunnelConversion,
    FunnelEvent,
    FunnelSource,
    FunnelSyncLog,
    Lead,
)
from signup_sync.db.session import create_engine
from signup_sync.demo import DEMO_EMAIL_SUFFIX, batches, generate
from signup_sync.settings import Settings
from signup_sync.vocabulary import SourceType
from tests.conftest import run_async, truncate_all

END = datetime(2026, 11, 1, tzinfo=UTC)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = list(generate(300, 7, end=END))
    again = list(generate(300, 7, end=END))
    assert first == again
    other = list(generate(300, 8, end=END))
    assert [lead.email for lead in other] != [lead.email for lead in first]
    # A lead depends only on (seed, index): a shard of the range matches the whole run.
    assert list(generate(5, 7, end=END, first_index=120)) == first[120:125]


def test_the_data_looks_like_a_funnel() -> None:
    leads = list(generate(600, 3, end=END, days=182))
    assert {lead.source_type for lead in leads} == {s.value for s in SourceType}
    events = [event for lead in leads for event in lead.events]
    assert all(END - timedelta(days=183) <= e.occurred_at <= END for e in events)
    assert all(e.email and e.email.endswith(DEMO_EMAIL_SUFFIX) for e in events)
    campaigns = {e.utm_campaign for e in events if e.utm_campaign}
    assert len(campaigns) >= 5
    converted = [lead for lead in leads if lead.conversion]
    assert 0 < len(converted) < len(leads) * 0.2
    for lead in converted:
        assert lead.conversion is not None
        by_type = {e.event_type: e.occurred_at for e in lead.events}
        assert by_type["signup_started"] <= by_type["signup_completed"]
        assert by_type["signup_completed"] < lead.conversion.converted_at <= END
    assert any(e.status == "cancelled" for e in events)
    assert any(any(not ch.isascii() for ch in (e.last_name or "")) for e in events)


def test_generation_streams_and_scales_by_parameters() -> None:
    stream = generate(10**9, 1, end=END)
    assert isinstance(stream, types.GeneratorType)
    assert next(stream).index == 0  # a billion leads cost nothing until they are read
    few = sum(len(lead.events) for lead in generate(200, 1, end=END, extra_touches=0))
    many = sum(len(lead.events) for lead in generate(200, 1, end=END, extra_touches=7))
    assert many > few * 2.5
    sizes = [sum(len(lead.events) for lead in b) for b in batches(generate(300, 1, end=END), 100)]
    assert all(size >= 100 for size in sizes[:-1])
    with pytest.raises(ValueError):
        next(generate(-1, 1))


async def _counts(settings: Settings) -> tuple[dict[str, int], int, int, int]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            sources = dict(
                (
                    await conn.execute(
                        select(Lead.first_touch_source_type, func.count()).group_by(
                            Lead.first_touch_source_type
                        )
                    )
                ).all()
            )
            events = (
                await conn.execute(select(func.count()).select_from(FunnelEvent))
            ).scalar_one()
            conversions = (
                await conn.execute(
                    select(func.count())
                    .select_from(FunnelConversion)
                    .where(FunnelConversion.first_touch_source_type.is_not(None))
                )
            ).scalar_one()
            converted_leads = (
                await conn.execute(select(func.count()).where(Lead.stage == 6))
            ).scalar_one()
        return sources, events, conversions, converted_leads
    finally:
        await engine.dispose()


async def _empty(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await truncate_all(engine)
    finally:
        await engine.dispose()


async def _sources_of(settings: Settings) -> list[tuple[str, bool, str | None, int, int]]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            logs = (
                select(func.count())
                .where(FunnelSyncLog.source_id == FunnelSource.id)
                .scalar_subquery()
            )
            rows = await conn.execute(
                select(
                    FunnelSource.source_type,
                    FunnelSource.is_active,
                    FunnelSource.last_sync_status,
                    FunnelSource.total_leads_captured,
                    logs,
                ).order_by(FunnelSource.source_type)
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]
    finally:
        await engine.dispose()


def test_demo_command_fills_all_seven_sources_and_reruns_add_nothing(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_async(_empty(settings))
    monkeypatch.setenv("ENGARDE_DATABASE_URL", database_url)
    monkeypatch.setenv("SIGNUP_SYNC_SERVICE_TOKEN", "demo-test-token-0001")
    runner = CliRunner()
    args = ["demo", "--leads", "400", "--seed", "5", "--end-date", "2026-10-31"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    sources, events, conversions, converted = run_async(_counts(settings))
    assert set(sources) == {s.value for s in SourceType}
    assert sum(sources.values()) == 400
    expected_events = sum(len(lead.events) for lead in generate(400, 5, end=END))
    assert conversions > 0
    # Every conversion adds one `converted` event and moves its lead to stage 6.
    assert events == expected_events + conversions
    assert converted == conversions
    assert "conversions recorded" in result.output
    assert "/dashboard" in result.output

    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "0 events stored" in again.output
    assert run_async(_counts(settings)) == (sources, events, conversions, converted)

    fresh = runner.invoke(cli, [*args, "--reset"])
    assert fresh.exit_code == 0, fresh.output
    assert "Removed 400 earlier demo leads" in fresh.output
    assert run_async(_counts(settings)) == (sources, events, conversions, converted)

    # The four pulled sources exist, switched off, each with one finished sync (not repeated).
    demo_sources = run_async(_sources_of(settings))
    assert [row[0] for row in demo_sources] == ["easyappointments", "eventbrite", "poshvip", "zoom"]
    assert all(not active for _, active, _, _, _ in demo_sources)
    assert {row[0]: row[2] for row in demo_sources} == {
        "easyappointments": "success", "eventbrite": "partial", "poshvip": "success",
        "zoom": "success",
    }  # fmt: skip
    assert {row[0]: row[3] for row in demo_sources} == {
        t: sources[t] for t in ("easyappointments", "eventbrite", "poshvip", "zoom")
    }
    assert all(logs == 1 for *_, logs in demo_sources)

    bad = runner.invoke(cli, ["demo", "--end-date", "yesterday"])
    assert bad.exit_code == 2
