"""EasyAppointments connector against a fake EA REST API (real HTTP) and a real MariaDB.

The fake's clock is the connector's ``run_started_at``: NOW = 2024-06-20 12:00 UTC. Site
time zone Europe/Madrid (CEST, +2); providers 2 (Madrid) and 5 (New York, EDT, -4).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import aclosing, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.sources import REGISTRY
from signup_sync.sources.base import Page, RetryPolicy, SourceContext
from signup_sync.sources.easyappointments import (
    EasyAppointmentsConfig,
    EasyAppointmentsConnector,
    map_webhook,
)
from signup_sync.sources.errors import (
    FatalSourceError,
    PaginationLoopError,
    RetriableSourceError,
    SkipRecord,
)
from tests.fakes import easyappointments as fakes
from tests.fakes.easyappointments import FakeEasyAppointments
from tests.helpers import local_access

NOW = datetime(2024, 6, 20, 12, 0, tzinfo=UTC)
JOSE, ANA, WANG, SEAN = (
    "jose.alvarez@example.com",
    "ana.garcia@example.com",
    "wang.fang@example.com",
    "sean.obrien@example.com",
)
LI_PHONE = "+34611222444"


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


B, C = "appointment_booked", "appointment_completed"
# (appointment id, event type, email or phone, status, occurred_at UTC) for the default data.
FULL_RUN = [
    (1001, B, JOSE, "active", z("2024-06-03 15:41:09")),
    (1001, C, JOSE, "active", z("2024-06-12 09:00:00")),
    (1002, B, LI_PHONE, "active", z("2024-06-03 16:02:55")),
    (1002, C, LI_PHONE, "active", z("2024-06-13 14:30:00")),
    (1003, B, ANA, "active", z("2024-06-04 07:00:00")),
    (1003, C, ANA, "active", z("2024-06-14 14:00:00")),  # New York provider
    (1004, B, ANA, "active", z("2024-06-05 08:00:00")),  # case-variant email, future
    (1006, B, WANG, "cancelled", z("2024-06-06 10:00:00")),
    (1006, C, WANG, "cancelled", z("2024-06-18 10:30:00")),
    (1009, B, JOSE, "active", z("2024-06-08 06:00:00")),
    (1011, B, ANA, "active", z("2024-06-09 06:00:00")),
    (1011, C, ANA, "active", z("2024-06-20 11:30:00")),  # ended 30 min before NOW
    (1012, B, WANG, "active", z("2024-06-10 06:00:00")),  # ends 12:30 UTC: not yet
    (1013, B, SEAN, "cancelled", z("2024-05-20 06:00:00")),
    (1013, C, SEAN, "cancelled", z("2024-06-01 08:30:00")),
    (1014, B, JOSE, "active", z("2024-05-01 08:00:00")),
    (1014, C, JOSE, "active", z("2024-05-10 08:30:00")),
    (1015, B, LI_PHONE, "active", z("2024-05-02 08:00:00")),
    (1015, C, LI_PHONE, "active", z("2024-05-11 08:30:00")),
    (1016, B, ANA, "active", z("2024-05-03 08:00:00")),
    (1016, C, ANA, "active", z("2024-05-12 14:30:00")),
    (1017, B, WANG, "active", z("2024-05-04 08:00:00")),
    (1017, C, WANG, "active", z("2024-05-13 08:30:00")),
    (1018, B, SEAN, "active", z("2024-05-05 08:00:00")),
    (1018, C, SEAN, "active", z("2024-05-14 14:30:00")),
]
FULL_SKIPS = ["no email", "draft appointment"]


@pytest.fixture(scope="session")
def ea_server() -> Iterator[FakeEasyAppointments]:
    yield from fakes.serve()


@pytest.fixture
def fake(ea_server: FakeEasyAppointments) -> FakeEasyAppointments:
    ea_server.reset()
    fakes.seed(ea_server)
    return ea_server


def context(
    fake: FakeEasyAppointments,
    *,
    cursor: dict[str, Any] | None = None,
    now: datetime = NOW,
    secrets: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    force: bool = False,
    **config: Any,
) -> SourceContext:
    settings: dict[str, Any] = {
        "base_url": fake.base_url,
        "page_length": 5,
        "min_interval_seconds": 0,
        "site_timezone": "Europe/Madrid",
        "infer_completed": True,
        "utm_fields": ["custom_field_1"],
        **config,
    }
    return SourceContext(
        source_id=1,
        access=local_access(),
        source_type="easyappointments",
        name="ea",
        config=EasyAppointmentsConfig(**settings),
        secrets={"api_token": fakes.TOKEN} if secrets is None else secrets,
        cursor=cursor,
        run_started_at=now,
        since=since,
        until=until,
        force=force,
        retry=retry or RetryPolicy(wait_scale=0),
    )


def key(event: EventRecord) -> tuple[Any, ...]:
    who = event.email or event.phone_e164
    return (int(event.external_id.split(":")[1]), event.event_type, who, event.status,
            event.occurred_at)  # fmt: skip


async def collect(ctx: SourceContext) -> tuple[list[Page], list[EventRecord], list[str]]:
    connector = EasyAppointmentsConnector(ctx)
    pages, events, skips = [], [], []
    try:
        async with aclosing(connector.pages()) as stream:
            async for page in stream:
                pages.append(page)
                for record in page.records:
                    try:
                        events.extend(connector.map_record(record))
                    except SkipRecord as exc:
                        skips.append(exc.reason)
    finally:
        await connector.aclose()
    return pages, events, skips


async def sync_into(
    engine: AsyncEngine, ctx: SourceContext, *, stop_after: int | None = None
) -> dict[str, Any] | None:
    """What the engine does: map each page, ingest it and keep its cursor, page by page."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    connector = EasyAppointmentsConnector(ctx)
    cursor = ctx.cursor
    try:
        async with aclosing(connector.pages()) as stream:
            done = 0
            async for page in stream:
                events: list[EventRecord] = []
                for record in page.records:
                    with suppress(SkipRecord):
                        events.extend(connector.map_record(record))
                async with factory() as session:
                    await ingest(session, events)
                    await session.commit()
                if page.cursor is not None:
                    cursor = page.cursor
                done += 1
                if done == stop_after:
                    break  # the process "dies" after committing page k
    finally:
        await connector.aclose()
    return dict(cursor) if cursor is not None else None


async def snapshot(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    factory = async_sessionmaker(engine)
    async with factory() as session:
        rows = await session.execute(
            select(
                FunnelEvent.external_id,
                FunnelEvent.event_type,
                FunnelEvent.status,
                FunnelEvent.occurred_at,
                Lead.email,
                Lead.phone_e164,
                FunnelEvent.event_metadata,
            )
            .join(Lead, Lead.id == FunnelEvent.lead_id)
            .order_by(FunnelEvent.external_id, FunnelEvent.event_type)
        )
        return [tuple(r) for r in rows]


# ---- mapping and paging ---------------------------------------------------------------------


def test_registered() -> None:
    assert REGISTRY["easyappointments"] is EasyAppointmentsConnector


async def test_full_sync_maps_every_appointment_exactly(fake: FakeEasyAppointments) -> None:
    pages, events, skips = await collect(context(fake))
    assert sorted(map(key, events)) == FULL_RUN
    assert skips == FULL_SKIPS
    assert [len(p.records) for p in pages] == [5, 5, 5, 1]  # unavailability 1010 not listed
    assert pages[-1].cursor == {"v": 1, "mode": "api", "phase": "idle", "max_id": 1018, "page": 4}
    queries = fake.pages_requested()
    assert [q["page"] for q in queries] == ["1", "2", "3", "4"]
    assert all(q["sort"] == "id" and q["length"] == "5" for q in queries)
    assert all(q["with"] == "customer,service,provider" for q in queries)
    jose = next(e for e in events if e.external_id == "appointment:1001")
    assert (jose.first_name, jose.last_name) == ("José", "Álvarez-Núñez")
    assert (jose.utm_source, jose.utm_campaign) == ("instagram", "summer24")
    assert jose.phone_e164 == "+34611222333"
    assert jose.metadata == {
        "item": {"kind": "appointment", "id": "1", "name": "Discovery call"},
        "appointment_id": "1001",
        "status": "Booked",
        "start": "2024-06-12 10:30:00",
        "end": "2024-06-12 11:00:00",
        "timezone": "Europe/Madrid",
        "provider_id": 2,
    }
    wang = next(e for e in events if e.external_id == "appointment:1012")
    assert (wang.first_name, wang.last_name, wang.metadata["timezone"]) == (
        "芳", "王", "America/New_York",
    )  # fmt: skip
    li = next(e for e in events if e.external_id == "appointment:1002")
    assert (li.email, li.phone) == (None, "+34 611 222 444")


async def test_completion_is_only_inferred_when_enabled(fake: FakeEasyAppointments) -> None:
    _, events, _ = await collect(context(fake, infer_completed=False))
    assert sorted(map(key, events)) == [row for row in FULL_RUN if row[1] == B]
    # A status the deployment names "completed" still completes without the inference.
    fake.appointments[1004]["status"] = "Done"
    _, events, _ = await collect(context(fake, infer_completed=False, completed_statuses=["done"]))
    assert [e.event_type for e in events if e.external_id == "appointment:1004"] == [B, C]


async def test_basic_auth_reads_the_same(fake: FakeEasyAppointments) -> None:
    user, password = fakes.ADMIN
    ctx = context(fake, auth="basic", secrets={"username": user, "password": password})
    _, events, _ = await collect(ctx)
    assert sorted(map(key, events)) == FULL_RUN


@pytest.mark.parametrize(
    ("auth", "secrets"),
    [
        ("bearer", {"api_token": "expired-token-xyz"}),
        ("basic", {"username": "admin", "password": "wrong-password-xyz"}),
    ],
)
async def test_wrong_credentials_are_fatal_and_not_echoed(
    fake: FakeEasyAppointments, auth: str, secrets: dict[str, str]
) -> None:
    with pytest.raises(FatalSourceError) as info:
        await collect(context(fake, auth=auth, secrets=secrets))
    assert "401" in str(info.value)
    assert "xyz" not in str(info.value)
    assert len(fake.requests) == 1  # a 401 is not retried


async def test_missing_secret_names_the_variable(fake: FakeEasyAppointments) -> None:
    with pytest.raises(FatalSourceError, match="SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_API_TOKEN"):
        await collect(context(fake, secrets={}))
    with pytest.raises(FatalSourceError, match="EA_PASS"):
        await collect(
            context(fake, auth="basic", password_env="EA_PASS", secrets={"username": "a"})
        )


async def test_requests_are_paced_under_the_limit_by_default(fake: FakeEasyAppointments) -> None:
    config = EasyAppointmentsConfig(site_timezone="UTC")
    assert config.min_interval_seconds >= 1.25  # 100 requests / 120 s per IP
    assert config.rate_limit_window_seconds == 120
    connector = EasyAppointmentsConnector(context(fake, min_interval_seconds=1.5))
    async with aclosing(connector.pages()) as stream:
        await anext(stream)
        assert connector.reader.http.min_interval == 1.5
    await connector.aclose()


async def test_bare_429_waits_for_the_limiter_window(fake: FakeEasyAppointments) -> None:
    fake.fail("appointments", "429", page=2)
    _, events, _ = await collect(context(fake))
    assert sorted(map(key, events)) == FULL_RUN
    assert [q["page"] for q in fake.pages_requested()] == ["1", "2", "2", "3", "4"]
    # When the limiter never lets go, the error carries the configured window to wait.
    fake.fail("appointments", "429", times=99)
    ctx = context(fake, rate_limit_window_seconds=77, retry=RetryPolicy(attempts=2, wait_scale=0))
    with pytest.raises(RetriableSourceError) as info:
        await collect(ctx)
    assert info.value.retry_after == 77


async def test_server_error_and_truncated_page_are_retried(fake: FakeEasyAppointments) -> None:
    fake.fail("appointments", "500", page=1)
    fake.fail("appointments", "truncated", page=3)
    _, events, _ = await collect(context(fake))
    assert sorted(map(key, events)) == FULL_RUN
    assert [q["page"] for q in fake.pages_requested()] == ["1", "1", "2", "3", "3", "4"]


async def test_wrong_shape_page_is_retriable_and_resumes(fake: FakeEasyAppointments) -> None:
    fake.fail("appointments", "object", page=3)
    connector = EasyAppointmentsConnector(context(fake))
    seen: list[Page] = []
    with pytest.raises(RetriableSourceError, match="malformed page"):
        async with aclosing(connector.pages()) as stream:
            async for page in stream:
                seen.append(page)
    await connector.aclose()
    assert len(seen) == 2
    pages, _, _ = await collect(context(fake, cursor=seen[-1].cursor))
    assert [r["id"] for p in pages for r in p.records] == [1013, 1014, 1015, 1016, 1017, 1018]


async def test_list_404_is_fatal(fake: FakeEasyAppointments) -> None:
    with pytest.raises(FatalSourceError, match="404"):
        await collect(context(fake, base_url=fake.base_url.replace("/v1/", "/v9/")))


async def test_without_with_customers_are_fetched_once_and_deleted_ones_skipped(
    fake: FakeEasyAppointments,
) -> None:
    fake.honour_with = False  # an EA 1.4 server ignores with=
    del fake.users[348]  # Seán deleted: GET customers/348 answers 404
    _, events, skips = await collect(context(fake))
    expected = [row for row in FULL_RUN if row[2] != SEAN]
    assert sorted(map(key, events)) == expected
    assert sorted(skips) == sorted([*FULL_SKIPS, "customer not found", "customer not found"])
    single = [path for path, _ in fake.requests if path.startswith("customers/")]
    assert sorted(single) == sorted(f"customers/{i}" for i in (342, 343, 344, 345, 346, 347, 348))
    assert [path for path, _ in fake.requests].count("services") == 1
    # The per-run customer cache is bounded: with room for one, customers are fetched again.
    fake.requests.clear()
    await collect(context(fake, customer_cache_size=1))
    assert len([p for p, _ in fake.requests if p.startswith("customers/")]) == 16
    assert [path for path, _ in fake.requests].count("providers") == 1


async def test_backfill_window_uses_the_date_filters_and_keeps_the_cursor(
    fake: FakeEasyAppointments,
) -> None:
    ctx = context(
        fake, since=datetime(2024, 6, 13, tzinfo=UTC), until=datetime(2024, 6, 19, tzinfo=UTC)
    )
    pages, events, _ = await collect(ctx)
    assert all(p.cursor is None for p in pages)
    assert sorted({int(e.external_id.split(":")[1]) for e in events}) == [1002, 1003, 1006]
    assert fake.pages_requested()[0]["from"] == "2024-06-13"
    assert fake.pages_requested()[0]["till"] == "2024-06-19"


async def test_a_page_that_repeats_is_a_loop(fake: FakeEasyAppointments) -> None:
    fake.ignore_page = True  # a server that answers page 1 whatever page is asked
    with pytest.raises(PaginationLoopError):
        await collect(context(fake))
    assert [q["page"] for q in fake.pages_requested()] == ["1", "2"]


# ---- with the database: idempotency, increments, resume -------------------------------------


async def test_second_run_adds_nothing(fake: FakeEasyAppointments, engine: AsyncEngine) -> None:
    cursor = await sync_into(engine, context(fake))
    first = await snapshot(engine)
    assert len(first) == len(FULL_RUN)
    assert (
        sorted((int(r[0].split(":")[1]), r[1], r[4] or r[5], r[2], r[3]) for r in first) == FULL_RUN
    )
    factory = async_sessionmaker(engine)
    async with factory() as session:
        emails = set((await session.execute(select(Lead.email))).scalars())
    assert emails == {ANA, JOSE, SEAN, WANG, None}
    fake.requests.clear()
    await sync_into(engine, context(fake, cursor=cursor))
    assert await snapshot(engine) == first
    # The second run re-read only the window (from 2024-06-06: 10 rows) and the last page.
    assert [(q.get("from"), q["page"]) for q in fake.pages_requested()] == [
        ("2024-06-06", "1"), ("2024-06-06", "2"), ("2024-06-06", "3"), (None, "4"),
    ]  # fmt: skip


async def test_incremental_run_picks_up_only_changes(
    fake: FakeEasyAppointments, engine: AsyncEngine
) -> None:
    cursor = await sync_into(engine, context(fake))
    before = {(r[0], r[1]): r for r in await snapshot(engine)}
    fake.appointments[1019] = fakes.appointment_row(
        1019, 342, 2, 2, "2024-06-20 18:00:00", "2024-06-28 10:00:00", 30, "Booked"
    )
    fake.appointments[1009]["status"] = "Cancelled"  # inside the window
    fake.appointments[1014]["status"] = "Cancelled"  # before the window: not re-read
    later = NOW + timedelta(days=1)
    cursor = await sync_into(engine, context(fake, cursor=cursor, now=later))
    after = {(r[0], r[1]): r for r in await snapshot(engine)}
    added = sorted(set(after) - set(before))
    assert added == [
        ("appointment:1009", C), ("appointment:1012", C), ("appointment:1019", B),
    ]  # fmt: skip
    assert after[("appointment:1009", C)][2] == "cancelled"
    assert after[("appointment:1012", C)][3] == z("2024-06-20 12:30:00")
    assert after[("appointment:1019", B)][4] == JOSE
    changed = sorted(k for k in before if before[k][2] != after[k][2])
    assert changed == [("appointment:1009", B)]
    assert cursor is not None and cursor["max_id"] == 1019
    assert [(q.get("from"), q["page"]) for q in fake.pages_requested()][4:] == [
        ("2024-06-07", "1"), ("2024-06-07", "2"), ("2024-06-07", "3"), (None, "4"),
    ]  # fmt: skip


@pytest.mark.parametrize("k", [1, 2, 3])
async def test_kill_after_page_k_then_resume_gives_the_same_rows(
    fake: FakeEasyAppointments, engine: AsyncEngine, k: int
) -> None:
    await sync_into(engine, context(fake))
    uninterrupted = await snapshot(engine)
    await truncate(engine)
    cursor = await sync_into(engine, context(fake), stop_after=k)
    assert cursor is not None and cursor["page"] == k
    assert len(await snapshot(engine)) < len(uninterrupted)
    await sync_into(engine, context(fake, cursor=cursor))
    assert await snapshot(engine) == uninterrupted


async def test_kill_during_the_window_then_resume(
    fake: FakeEasyAppointments, engine: AsyncEngine
) -> None:
    def change() -> None:
        fake.appointments[1009]["status"] = "Cancelled"
        fake.appointments[1019] = fakes.appointment_row(
            1019, 344, 2, 1, "2024-06-20 18:00:00", "2024-06-28 10:00:00", 30, "Booked"
        )

    later = NOW + timedelta(days=1)
    cursor = await sync_into(engine, context(fake))
    change()
    mid = await sync_into(engine, context(fake, cursor=cursor, now=later), stop_after=1)
    assert mid is not None and (mid["phase"], mid["window_page"]) == ("window", 1)
    await sync_into(engine, context(fake, cursor=mid, now=later))
    resumed = await snapshot(engine)

    await truncate(engine)  # the same two runs, uninterrupted
    fake.reset()
    fakes.seed(fake)
    await sync_into(engine, context(fake))
    change()
    await sync_into(engine, context(fake, cursor=cursor, now=later))
    assert resumed == await snapshot(engine)


async def test_resume_steps_back_over_deleted_rows(fake: FakeEasyAppointments) -> None:
    pages, _, _ = await collect(context(fake))
    cursor = pages[1].cursor  # after page 2 (last id 1012)
    for gone in (1001, 1002, 1003):  # hard deletes move 1013.. to earlier pages
        del fake.appointments[gone]
    pages, _, _ = await collect(context(fake, cursor=cursor, rescan_days=None))
    assert [r["id"] for p in pages for r in p.records] == [1013, 1014, 1015, 1016, 1017, 1018]


async def test_force_rereads_everything(fake: FakeEasyAppointments) -> None:
    pages, _, _ = await collect(context(fake))
    _, events, _ = await collect(context(fake, cursor=pages[-1].cursor, force=True))
    assert sorted(map(key, events)) == FULL_RUN
    assert all("from" not in q for q in fake.pages_requested()[4:])


async def truncate(engine: AsyncEngine) -> None:
    from tests.conftest import truncate_all

    await truncate_all(engine)


# ---- webhooks -------------------------------------------------------------------------------


async def test_webhook_payload_maps_to_the_same_events_as_the_sync(
    fake: FakeEasyAppointments,
) -> None:
    ctx = context(fake)
    _, events, _ = await collect(ctx)
    config = ctx.config
    assert isinstance(config, EasyAppointmentsConfig)
    row = dict(fake.appointments[1001])
    row["is_unavailability"] = False
    customer = {k: v for k, v in fake.users[342].items() if k != "role"}
    body = {"action": "appointment_save", "payload": row}
    hooked = map_webhook(
        body,
        config,
        now=NOW,
        customer=customer,
        service={"id": 1, "name": "Discovery call"},
        provider={"id": 2, "timezone": "Europe/Madrid"},
    )
    assert hooked == [e for e in events if e.external_id == "appointment:1001"]
    # The same customer as an API object (GET customers/342) gives the same events.
    api_customer = fakes.user_api(fake.users[342])
    service, provider = {"name": "Discovery call"}, {"timezone": "Europe/Madrid"}
    again = map_webhook(
        body, config, now=NOW, customer=api_customer, service=service, provider=provider
    )
    assert again == hooked
    deleted = map_webhook(
        {"action": "appointment_delete", "payload": row}, config, now=NOW, customer=customer
    )
    assert [(e.event_type, e.status) for e in deleted] == [(B, "cancelled"), (C, "cancelled")]
    assert map_webhook({"action": "customer_save", "payload": customer}, config, now=NOW) == []
    unavailable = {**row, "is_unavailability": True}
    assert (
        map_webhook({"action": "appointment_save", "payload": unavailable}, config, now=NOW) == []
    )
    with pytest.raises(SkipRecord, match="customer not found"):
        map_webhook(body, config, now=NOW)
    with pytest.raises(SkipRecord, match="malformed"):
        map_webhook({"action": "appointment_save", "payload": "x"}, config, now=NOW)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="time zone"):
        EasyAppointmentsConfig(site_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="table_prefix"):
        EasyAppointmentsConfig(mode="mysql", table_prefix="ea; drop", site_timezone="UTC")
    with pytest.raises(ValueError):
        EasyAppointmentsConfig(api_token="inline-secret", site_timezone="UTC")  # extra: forbidden
    with pytest.raises(ValueError, match="site_timezone"):
        EasyAppointmentsConfig()  # no silent default: EA's writing zone must be named
    utc = {"site_timezone": "UTC"}
    assert EasyAppointmentsConfig(**utc).secret_env_names() == {
        "api_token": "SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_API_TOKEN"
    }
    assert EasyAppointmentsConfig(auth="basic", **utc).secret_env_names() == {
        "username": "SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_USERNAME",
        "password": "SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_PASSWORD",
    }
    assert EasyAppointmentsConfig(mode="mysql", **utc).secret_env_names() == {}


# ---- direct-MySQL mode against the real MariaDB ---------------------------------------------

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
EA_SCHEMA = [
    """CREATE TABLE ea_roles (id INT(11) PRIMARY KEY AUTO_INCREMENT, create_datetime DATETIME NULL,
        update_datetime DATETIME NULL, name VARCHAR(256), slug VARCHAR(256), is_admin TINYINT(4),
        appointments INT(11), customers INT(11), services INT(11), users INT(11),
        system_settings INT(11), user_settings INT(11)) ENGINE=InnoDB""",
    """CREATE TABLE ea_users (id INT(11) PRIMARY KEY AUTO_INCREMENT, create_datetime DATETIME NULL,
        update_datetime DATETIME NULL, first_name VARCHAR(256) NULL, last_name VARCHAR(512) NULL,
        email VARCHAR(512) NULL, mobile_number VARCHAR(128) NULL, phone_number VARCHAR(128) NULL,
        address VARCHAR(256) NULL, city VARCHAR(256) NULL, state VARCHAR(128) NULL,
        zip_code VARCHAR(64) NULL, notes TEXT NULL, timezone VARCHAR(256) DEFAULT 'UTC',
        language VARCHAR(256) DEFAULT 'english', custom_field_1 TEXT NULL, custom_field_2 TEXT NULL,
        custom_field_3 TEXT NULL, custom_field_4 TEXT NULL, custom_field_5 TEXT NULL,
        is_private TINYINT(4) DEFAULT 0, ldap_dn TEXT NULL, id_roles INT(11) NOT NULL,
        FOREIGN KEY (id_roles) REFERENCES ea_roles (id)) ENGINE=InnoDB""",
    """CREATE TABLE ea_services (id INT(11) PRIMARY KEY AUTO_INCREMENT,
        create_datetime DATETIME NULL, update_datetime DATETIME NULL, name VARCHAR(256),
        duration INT(11), price DECIMAL(10,2),
        currency VARCHAR(32), description TEXT, slot_interval INT(11) DEFAULT 15,
        color VARCHAR(256) DEFAULT '#7cbae8', location TEXT, attendants_number INT(11) DEFAULT 1,
        is_private TINYINT(4) DEFAULT 0, id_service_categories INT(11) NULL) ENGINE=InnoDB""",
    """CREATE TABLE ea_appointments (id INT(11) PRIMARY KEY AUTO_INCREMENT,
        create_datetime DATETIME NULL, update_datetime DATETIME NULL, book_datetime DATETIME NULL,
        start_datetime DATETIME NULL, end_datetime DATETIME NULL, location TEXT NULL,
        meeting_link TEXT NULL, notes TEXT NULL, hash TEXT NULL,
        color VARCHAR(256) DEFAULT '#7cbae8', status VARCHAR(512) DEFAULT '',
        is_unavailability TINYINT(4) DEFAULT 0, id_users_provider INT(11),
        id_users_customer INT(11) NULL, id_services INT(11) NULL, id_google_calendar TEXT NULL,
        id_caldav_calendar TEXT NULL,
        FOREIGN KEY (id_users_provider) REFERENCES ea_users (id) ON DELETE CASCADE,
        FOREIGN KEY (id_users_customer) REFERENCES ea_users (id) ON DELETE CASCADE,
        FOREIGN KEY (id_services) REFERENCES ea_services (id) ON DELETE CASCADE) ENGINE=InnoDB""",
]
# Not EA's seed order: the customer role is found by its slug, not by id 3.
ROLES = [(1, "Administrator", "admin"), (2, "Provider", "provider"),
         (3, "Secretary", "secretary"), (4, "Customer", "customer")]  # fmt: skip
ROLE_ID = {"provider": 2, "secretary": 3, "customer": 4}


class EaDatabase:
    """A throw-away EA database on the local MariaDB, filled with the fake's default data."""

    def __init__(self, name: str) -> None:
        import pymysql

        self.name = name
        self.conn = pymysql.connect(**MYSQL, charset="utf8mb4", autocommit=True)
        self.run(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.conn.select_db(name)
        for ddl in EA_SCHEMA:
            self.run(ddl)

    def run(self, sql: str, *args: Any) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args or None)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        marks = ", ".join(["%s"] * len(row))
        self.run(f"INSERT INTO {table} ({names}) VALUES ({marks})", *row.values())  # noqa: S608

    def seed(self, fake: FakeEasyAppointments) -> None:
        for key, name, slug in ROLES:
            self.insert("ea_roles", {"id": key, "name": name, "slug": slug, "is_admin": key == 1})
        for user in fake.users.values():
            row = {k: v for k, v in user.items() if k != "role"}
            self.insert("ea_users", {**row, "id_roles": ROLE_ID[user["role"]]})
        for service in fake.services.values():
            self.insert("ea_services", service)
        for appointment in fake.appointments.values():
            self.appointment(appointment)

    def appointment(self, row: dict[str, Any]) -> None:
        self.insert("ea_appointments", {**row, "is_unavailability": int(row["is_unavailability"])})

    def close(self) -> None:
        self.run(f"DROP DATABASE IF EXISTS `{self.name}`")
        self.conn.close()


@pytest.fixture
def ea_db(fake: FakeEasyAppointments) -> Iterator[EaDatabase]:
    import uuid

    import pymysql

    try:
        db = EaDatabase(f"ea_sync_test_{uuid.uuid4().hex[:10]}")
    except pymysql.err.OperationalError as exc:
        message = f"MariaDB not reachable at 127.0.0.1:3306 ({exc})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        db.seed(fake)
        yield db
    finally:
        db.close()


def mysql_context(db: EaDatabase, fake: FakeEasyAppointments, **options: Any) -> SourceContext:
    settings = {"secrets": {}, "mysql_user": "root", "mysql_database": db.name, "mysql_batch": 5}
    return context(fake, mode="mysql", **{**settings, **options})


async def test_mysql_full_sync_gives_the_api_events(
    fake: FakeEasyAppointments, ea_db: EaDatabase
) -> None:
    pages, events, skips = await collect(mysql_context(ea_db, fake))
    assert sorted(map(key, events)) == FULL_RUN
    assert sorted(skips) == sorted(FULL_SKIPS)
    assert [len(p.records) for p in pages] == [5, 5, 5, 1, 0]
    assert pages[-1].cursor == {
        "v": 1, "mode": "mysql", "phase": "changes",
        "changed_at": "2024-06-10 08:00:00", "id": 1012,
        # Customers are followed from the run's start (site time), deletions checked then.
        "customers_changed_at": "2024-06-20 14:00:00",
        "deletions_checked_at": "2024-06-20T12:00:00+00:00",
    }  # fmt: skip
    _, api_events, _ = await collect(context(fake))
    assert sorted(events, key=key) == sorted(api_events, key=key)  # metadata and names too


async def test_mysql_incremental_reads_changes_and_newly_ended(
    fake: FakeEasyAppointments, ea_db: EaDatabase, engine: AsyncEngine
) -> None:
    cursor = await sync_into(engine, mysql_context(ea_db, fake))
    before = {(r[0], r[1]): r for r in await snapshot(engine)}
    assert len(before) == len(FULL_RUN)
    # Second run, same data, same clock: nothing new.
    await sync_into(engine, mysql_context(ea_db, fake, cursor=cursor))
    assert {(r[0], r[1]): r for r in await snapshot(engine)} == before

    update = "UPDATE ea_appointments SET status = %s, update_datetime = %s WHERE id = %s"
    ea_db.run(update, "Cancelled", "2024-06-21 09:00:00", 1009)
    ea_db.run(update, "Cancelled", "2024-06-21 09:30:00", 1014)  # old row: seen via its update
    ea_db.appointment(fakes.appointment_row(
        1019, 345, 2, 2, "2024-06-20 18:00:00", "2024-06-28 10:00:00", 30, "Booked"))  # fmt: skip
    # Updated after the run starts (14:00 Madrid): left for the next run.
    ea_db.appointment(fakes.appointment_row(
        1020, 348, 2, 1, "2024-06-21 15:00:00", "2024-06-29 10:00:00", 30, "Booked"))  # fmt: skip
    # Booked for a provider (not a customer role): no customer.
    ea_db.appointment(fakes.appointment_row(
        1021, 5, 2, 1, "2024-06-21 10:00:00", "2024-06-29 11:00:00", 30, "Booked"))  # fmt: skip
    later = NOW + timedelta(days=1)
    ctx = mysql_context(ea_db, fake, cursor=cursor, now=later)
    _, _, skips = await collect(ctx)
    # 1021 from the changes; 1005 and 1008 again from the window (starts from 2024-06-07).
    assert sorted(skips) == ["customer not found", "draft appointment", "no email"]
    cursor = await sync_into(engine, ctx)
    after = {(r[0], r[1]): r for r in await snapshot(engine)}
    assert sorted(set(after) - set(before)) == [
        ("appointment:1009", C), ("appointment:1012", C), ("appointment:1019", B),
    ]  # fmt: skip
    changed = sorted(k for k in before if before[k][2] != after[k][2])
    assert changed == [
        ("appointment:1009", B), ("appointment:1014", B), ("appointment:1014", C),
    ]  # fmt: skip
    assert after[("appointment:1019", B)][4] == ANA
    assert cursor is not None
    assert (cursor["changed_at"], cursor["id"], cursor["phase"]) == (
        "2024-06-21 10:00:00",
        1021,
        "changes",
    )
    # The window re-read (for completion inference) covered starts from 2024-06-07.
    assert cursor["window_from"] == "2024-06-07"
    await sync_into(
        engine, mysql_context(ea_db, fake, cursor=cursor, now=later + timedelta(hours=2))
    )
    assert ("appointment:1020", B) in {(r[0], r[1]) for r in await snapshot(engine)}


@pytest.mark.parametrize("k", [1, 3])
async def test_mysql_kill_after_page_k_then_resume(
    fake: FakeEasyAppointments, ea_db: EaDatabase, engine: AsyncEngine, k: int
) -> None:
    await sync_into(engine, mysql_context(ea_db, fake))
    uninterrupted = await snapshot(engine)
    await truncate(engine)
    cursor = await sync_into(engine, mysql_context(ea_db, fake), stop_after=k)
    assert len(await snapshot(engine)) < len(uninterrupted)
    await sync_into(engine, mysql_context(ea_db, fake, cursor=cursor))
    assert await snapshot(engine) == uninterrupted


async def test_mysql_bad_credentials_are_fatal(
    fake: FakeEasyAppointments, ea_db: EaDatabase
) -> None:
    ctx = mysql_context(
        ea_db, fake, mysql_user="nobody_here", mysql_password_env="EA_DB_PASSWORD",
        secrets={"mysql_password": "wrong-password-xyz"},
    )  # fmt: skip
    with pytest.raises(FatalSourceError) as info:
        await collect(ctx)
    assert "xyz" not in str(info.value)
    with pytest.raises(FatalSourceError, match="EA_DB_PASSWORD"):
        await collect(mysql_context(ea_db, fake, mysql_password_env="EA_DB_PASSWORD"))
