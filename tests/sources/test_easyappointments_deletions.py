"""EasyAppointments deletions and customer corrections (issue 14, finding 4), through the
real engine (``run_sync``) on SQLite and PostgreSQL, against the fake EA API over HTTP and a
real MariaDB for MySQL mode. The fake's default data: see tests/fakes/easyappointments.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from signup_sync.sync.schemas import SourceSyncResult, SyncOptions
from tests.fakes import easyappointments as fakes
from tests.fakes.easyappointments import FakeEasyAppointments
from tests.helpers import LOCAL_SETTINGS
from tests.sources import test_easyappointments as ea_tests
from tests.sources.test_easyappointments import EaDatabase, collect, mysql_context
from tests.sync_fakes import add_source

# The EA fake server, its default data and the throw-away MariaDB database, shared.
ea_server, fake, ea_db = ea_tests.ea_server, ea_tests.fake, ea_tests.ea_db

NOW = datetime(2024, 6, 20, 12, 0, tzinfo=UTC)
RETRY = RetryPolicy(wait_scale=0)
Factory = async_sessionmaker[AsyncSession]
# Customer 347 (Wang) has appointments 1006 (already cancelled), 1012 and 1017.
WANG_APPOINTMENTS = ("appointment:1006", "appointment:1012", "appointment:1017")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The runs' start time (the fake's data is dated around NOW); tests move it."""
    now = [NOW]
    monkeypatch.setattr("signup_sync.sync.start.utcnow", lambda: now[0])
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_API_TOKEN", fakes.TOKEN)
    return now


def api_config(fake: FakeEasyAppointments, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": fake.base_url,
        "page_length": 5,
        "min_interval_seconds": 0,
        "site_timezone": "Europe/Madrid",
        "infer_completed": True,
        "id_scan_length": 4,
        **extra,
    }


async def sync(factory: Factory, source_id: int) -> SourceSyncResult:
    return await run_sync(factory, source_id, SyncOptions(), retry=RETRY, settings=LOCAL_SETTINGS)


async def statuses(factory: Factory) -> dict[tuple[str, str], str]:
    async with factory() as session:
        rows = await session.execute(
            select(FunnelEvent.external_id, FunnelEvent.event_type, FunnelEvent.status)
        )
        return {(str(x), str(t)): str(s) for x, t, s in rows.all()}


def changed(before: dict[Any, str], after: dict[Any, str]) -> list[Any]:
    """Stored events whose status changed (a later clock may add completions)."""
    assert set(before) <= set(after)
    return sorted(k for k in before if before[k] != after[k])


def id_scans(fake: FakeEasyAppointments) -> list[dict[str, str]]:
    return [q for q in fake.pages_requested() if q.get("fields") == "id"]


async def test_api_deleted_and_cascaded_appointments_become_cancelled(
    engine: AsyncEngine, fake: FakeEasyAppointments, clock: list[datetime]
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    source_id = await add_source(factory, config=api_config(fake))
    assert (await sync(factory, source_id)).status == "success"
    assert id_scans(fake) == []  # a first read has nothing stored to lose
    before = await statuses(factory)

    fake.delete_appointment(1001)  # the customer's cancel link
    fake.delete_user(347)  # a deleted customer: 1006, 1012 and 1017 cascade, no webhook
    fake.requests.clear()
    clock[0] = NOW + timedelta(days=1)
    result = await sync(factory, source_id)
    assert result.status == "success", result.error_messages
    after = await statuses(factory)
    assert changed(before, after) == [
        ("appointment:1001", "appointment_booked"),
        ("appointment:1001", "appointment_completed"),
        ("appointment:1012", "appointment_booked"),
        ("appointment:1017", "appointment_booked"),
        ("appointment:1017", "appointment_completed"),
    ]
    assert {after[k] for k in after if k[0] in (*WANG_APPOINTMENTS, "appointment:1001")} == {
        "cancelled"
    }
    assert result.leads_updated >= 3
    # Id-only pages, large length, paged to the short page; confirmed by a second scan.
    scans = id_scans(fake)
    assert {q["length"] for q in scans} == {"4"} and {q["sort"] for q in scans} == {"id"}
    # 12 appointments left: three full pages and an empty one, twice.
    assert [q["page"] for q in scans] == ["1", "2", "3", "4"] * 2

    # Within deletion_check_hours of the check: no scan; a day later, one scan, no change.
    fake.requests.clear()
    clock[0] = NOW + timedelta(days=1, hours=1)
    await sync(factory, source_id)
    assert id_scans(fake) == []
    clock[0] = NOW + timedelta(days=2)
    await sync(factory, source_id)
    assert [q["page"] for q in id_scans(fake)] == ["1", "2", "3", "4"]
    assert await statuses(factory) == after


async def test_api_server_ignoring_page_stops_the_id_scan(
    engine: AsyncEngine, fake: FakeEasyAppointments, clock: list[datetime]
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    source_id = await add_source(factory, config=api_config(fake))
    await sync(factory, source_id)
    before = await statuses(factory)
    fake.ignore_page_with_fields = True  # every id-only page is the first one
    clock[0] = NOW + timedelta(days=1)
    result = await sync(factory, source_id)
    assert result.status == "partial"
    assert any("repeats ids" in m for m in result.error_messages), result.error_messages
    assert len(id_scans(fake)) == 2  # page 1, then page 2 (the same ids): stop
    assert changed(before, await statuses(factory)) == []  # nothing cancelled on a broken scan


async def test_mysql_deleted_rows_become_cancelled(
    engine: AsyncEngine, fake: FakeEasyAppointments, ea_db: EaDatabase, clock: list[datetime]
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    config = {
        "mode": "mysql",
        "mysql_user": "root",
        "mysql_database": ea_db.name,
        "mysql_batch": 5,
        "site_timezone": "Europe/Madrid",
        "infer_completed": True,
    }
    source_id = await add_source(factory, config=config)
    assert (await sync(factory, source_id)).status == "success"
    before = await statuses(factory)
    ea_db.run("DELETE FROM ea_appointments WHERE id = %s", 1001)
    ea_db.run("DELETE FROM ea_users WHERE id = %s", 347)  # cascades to 1006, 1012, 1017
    clock[0] = NOW + timedelta(days=1)
    result = await sync(factory, source_id)
    assert result.status == "success", result.error_messages
    assert changed(before, await statuses(factory)) == [
        ("appointment:1001", "appointment_booked"),
        ("appointment:1001", "appointment_completed"),
        ("appointment:1012", "appointment_booked"),
        ("appointment:1017", "appointment_booked"),
        ("appointment:1017", "appointment_completed"),
    ]


async def test_mysql_rereads_a_customers_corrected_email_and_name(
    fake: FakeEasyAppointments, ea_db: EaDatabase
) -> None:
    pages, _, _ = await collect(mysql_context(ea_db, fake))
    cursor = next(p.cursor for p in reversed(pages) if p.cursor is not None)
    assert cursor["customers_changed_at"] == "2024-06-20 14:00:00"  # the run's start, Madrid
    ea_db.run(
        "UPDATE ea_users SET email = %s, first_name = %s, update_datetime = %s WHERE id = %s",
        "jose.new@example.com",
        "Josep",
        "2024-06-21 09:00:00",
        342,
    )
    later = NOW + timedelta(days=1)
    _, events, _ = await collect(mysql_context(ea_db, fake, cursor=cursor, now=later))
    corrected = {e.external_id for e in events if e.email == "jose.new@example.com"}
    assert corrected == {"appointment:1001", "appointment:1009", "appointment:1014"}
    assert {e.first_name for e in events if e.email == "jose.new@example.com"} == {"Josep"}


async def test_a_stored_config_without_site_timezone_fails_with_one_clear_message(
    engine: AsyncEngine, fake: FakeEasyAppointments, clock: list[datetime]
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    config = api_config(fake)
    del config["site_timezone"]  # stored before it was required
    source_id = await add_source(factory, config=config)
    result = await sync(factory, source_id)
    assert result.status == "failed"
    [message] = result.error_messages
    assert "config.site_timezone" in message and "PATCH /sources" in message
    async with factory() as session:
        assert await session.scalar(select(Lead.id).limit(1)) is None
