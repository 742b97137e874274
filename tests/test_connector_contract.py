"""Every registered connector, through the sync engine, against its fake server.

One adapter per connector (below) starts its fake from tests/fakes/, gives the
``funnel_sources`` config and the secret env variables, scripts failures, and states the
exact counts of a full run. Those counts are the ones each connector's own test module
works out by hand (imported from there, not re-derived). The engine's clock is pinned to
the run time those modules use, because what a connector emits can depend on "now"
(EasyAppointments infers completion from the end time; Zoom re-lists recent webinars).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync import sources
from signup_sync.db.models import FunnelEvent, FunnelSource, FunnelSyncLog, Lead
from signup_sync.db.session import create_session_factory
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from signup_sync.sync.schemas import SourceSyncResult, SyncOptions
from tests.fakes import easyappointments as ea_fake
from tests.fakes import eventbrite as eb_fake
from tests.fakes import poshvip as posh_fake
from tests.fakes import zoom as zoom_fake
from tests.helpers import LOCAL_SETTINGS
from tests.sources import test_easyappointments as ea_doc
from tests.sources import test_eventbrite as eb_doc
from tests.sources import test_poshvip as posh_doc
from tests.sources import test_zoom as zoom_doc
from tests.sync_fakes import add_source

Factory = async_sessionmaker[AsyncSession]
RETRY = RetryPolicy(wait_scale=0, attempts=4)


@dataclass(frozen=True)
class Counts:
    """A run's counters: records read, leads new, known leads changed, records skipped."""

    processed: int
    created: int
    updated: int
    skipped: int
    events: int
    skip_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Harness:
    """A running fake and how to drive it."""

    config: dict[str, Any]
    env: dict[str, str]
    # "429" / "500": the next request(s) of a listing fail that way once, then succeed.
    fail_once: Callable[[str], None]
    # Every later request of a listing fails (after the first page where there is one).
    fail_forever: Callable[[], None]
    # Scripted failures not served yet (0 once a run has met them all).
    pending: Callable[[], int]


@dataclass(frozen=True)
class Adapter:
    source_type: str
    serve: Callable[[], AbstractContextManager[Harness]]
    full: Counts
    leads: int
    run_at: datetime | None
    persistent: str  # status after a persistent failure: "partial" or "failed"
    reason: str  # a fragment of that failure's message


# ---- EasyAppointments: 16 appointments listed, pages of 5 --------------------------------


@contextmanager
def easyappointments() -> Iterator[Harness]:
    servers = ea_fake.serve()
    fake = next(servers)
    ea_fake.seed(fake)
    try:
        yield Harness(
            config={
                "base_url": fake.base_url,
                "page_length": 5,
                "min_interval_seconds": 0,
                "site_timezone": "Europe/Madrid",
                "infer_completed": True,
                "utm_fields": ["custom_field_1"],
            },
            env={"SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_API_TOKEN": ea_fake.TOKEN},
            fail_once=lambda kind: fake.fail("appointments", kind, page=2),
            fail_forever=lambda: fake.fail("appointments", "500", page=2, times=99),
            pending=lambda: sum(f.times for f in fake.failures),
        )
    finally:
        servers.close()


# Leads: José, Li (phone only), Ana (two spellings), Wang, Seán.
EA_LEADS = len({row[2] for row in ea_doc.FULL_RUN})
EA_MAPPED = len({row[0] for row in ea_doc.FULL_RUN})  # appointments that gave events
EASYAPPOINTMENTS = Adapter(
    source_type="easyappointments",
    serve=easyappointments,
    full=Counts(
        processed=EA_MAPPED + len(ea_doc.FULL_SKIPS),
        created=EA_LEADS,
        updated=EA_MAPPED - EA_LEADS,
        skipped=len(ea_doc.FULL_SKIPS),
        events=len(ea_doc.FULL_RUN),
        skip_reasons={reason: 1 for reason in ea_doc.FULL_SKIPS},
    ),
    leads=EA_LEADS,
    run_at=ea_doc.NOW,
    persistent="partial",
    reason="500",
)


# ---- Zoom: webinars W1-W3 and meeting M1 of the standard fake, pages of 2 ----------------


@contextmanager
def zoom() -> Iterator[Harness]:
    fake = zoom_fake.standard_zoom()
    registrants = f"/webinars/{zoom_fake.W1}/registrants"
    with zoom_fake.serve(fake.app()) as url:
        yield Harness(
            config={
                "base_url": f"{url}/v2",
                "token_url": f"{url}/oauth/token",
                "account_id": zoom_fake.ACCOUNT_ID,
                "user_ids": [zoom_fake.HOST],
                "meeting_ids": [int(zoom_fake.M1)],
                "page_size": 2,
            },
            env={
                "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID": zoom_fake.CLIENT_ID,
                "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET": zoom_fake.CLIENT_SECRET,
            },
            fail_once=lambda kind: fake.fail(registrants, kind, times=2, retry_after="1"),
            fail_forever=lambda: fake.fail(registrants, "500", times=99),
            pending=lambda: sum(f.times for f in fake.faults),
        )


ZOOM_EVENTS = len(zoom_doc.EXPECTED_REGISTERED) + len(zoom_doc.EXPECTED_ATTENDED)
ZOOM_SKIPS = sum(zoom_doc.EXPECTED_SKIPPED.values())
ZOOM_LEADS = len({e[0] for e in zoom_doc.EXPECTED_REGISTERED.values()})
# Each record gives one event or one skip: a registrant, or a person of an instance
# (their join sessions collapse into one record).
ZOOM_RECORDS = ZOOM_EVENTS + ZOOM_SKIPS
ZOOM = Adapter(
    source_type="zoom",
    serve=zoom,
    full=Counts(
        processed=ZOOM_RECORDS,
        created=ZOOM_LEADS,
        updated=ZOOM_EVENTS - ZOOM_LEADS,
        skipped=ZOOM_SKIPS,
        events=ZOOM_EVENTS,
        skip_reasons=dict(zoom_doc.EXPECTED_SKIPPED),
    ),
    leads=ZOOM_LEADS,
    run_at=zoom_doc.RUN_AT,
    persistent="partial",
    reason="500",
)


# ---- Eventbrite: 120 attendees of one organisation, pages of 50 ---------------------------


@contextmanager
def eventbrite() -> Iterator[Harness]:
    fake = eb_fake.FakeEventbrite(count=120)
    with eb_fake.serve(fake.app()) as url:
        yield Harness(
            config={"base_url": url, "organization_id": eb_doc.ORG},
            env={"SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN": eb_fake.TOKEN},
            fail_once=lambda kind: fake.inject(kind, page=2),
            fail_forever=lambda: fake.inject("500", page=2, times=99),
            pending=lambda: sum(f.times for f in fake.faults),
        )


EB_EVENTS = sum(eb_doc.FULL.values())
EB_MAPPED = sum(n for (kind, _), n in eb_doc.FULL.items() if kind == "event_registered")
EVENTBRITE = Adapter(
    source_type="eventbrite",
    serve=eventbrite,
    full=Counts(
        processed=120,
        created=112,  # 116 attendees with email, 4 of them case-variant duplicates
        updated=EB_MAPPED - 112,
        skipped=120 - EB_MAPPED,
        events=EB_EVENTS,
        skip_reasons={"no email": 120 - EB_MAPPED},
    ),
    leads=112,
    run_at=eb_doc.RUN_START,
    persistent="partial",
    reason="500",
)


# ---- Posh.VIP: the documented 13-row export, fetched from a file URL ----------------------


@contextmanager
def poshvip() -> Iterator[Harness]:
    state = posh_fake.FileServerState(files={"june.csv": posh_doc.EXPORT}, token="posh-t0ken")

    def fail(kind: str, times: int = 1) -> None:
        state.failure_status = int(kind)
        state.failures_before_success = times

    with posh_fake.file_server(state) as url:
        yield Harness(
            config={
                "base_url": url,
                "file_url": "/exports/june.csv",
                "file_token_env": "SIGNUP_SYNC_SOURCE_POSH_FILE_TOKEN",
                "timezone": posh_doc.TZ,
                "page_size": 4,
            },
            env={"SIGNUP_SYNC_SOURCE_POSH_FILE_TOKEN": "posh-t0ken"},
            fail_once=fail,
            fail_forever=lambda: fail("503", 99),
            pending=lambda: state.failures_before_success,
        )


POSHVIP = Adapter(
    source_type="poshvip",
    serve=poshvip,
    # 13 rows: 2 skipped; 8 people; rows 8 (Sam's phone) and 13 (second ticket) add to a
    # known lead; row 14 re-exports row 2 and changes nothing. 14 events.
    full=Counts(
        processed=13,
        created=8,
        updated=2,
        skipped=2,
        events=14,
        skip_reasons={
            "no email or phone": 1,
            "order_status 'on hold' is unknown; map it in status_map": 1,
        },
    ),
    leads=8,
    run_at=None,
    persistent="failed",  # one download: nothing lands before it fails
    reason="503",
)

ADAPTERS = {a.source_type: a for a in (EASYAPPOINTMENTS, ZOOM, EVENTBRITE, POSHVIP)}


def test_every_registered_connector_has_an_adapter() -> None:
    assert set(ADAPTERS) == set(sources.REGISTRY)


# ---- the runs ------------------------------------------------------------------------------


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Adapter:
    chosen = ADAPTERS[request.param]
    if chosen.run_at is not None:
        run_at = chosen.run_at
        monkeypatch.setattr("signup_sync.sync.start.utcnow", lambda: run_at)
    return chosen


@pytest.fixture
def harness(adapter: Adapter, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with adapter.serve() as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        yield running


async def sync(factory: Factory, source_id: int, **options: Any) -> SourceSyncResult:
    return await run_sync(
        factory, source_id, SyncOptions(**options), retry=RETRY, settings=LOCAL_SETTINGS
    )


async def counts_in_db(factory: Factory) -> tuple[int, int]:
    async with factory() as session:
        events = await session.scalar(select(func.count()).select_from(FunnelEvent))
        leads = await session.scalar(select(func.count()).select_from(Lead))
    return int(events or 0), int(leads or 0)


async def row(factory: Factory, model: Any, key: int) -> Any:
    async with factory() as session:
        found = await session.get(model, key)
        assert found is not None
        return found


def counters(result: SourceSyncResult) -> tuple[int, ...]:
    return (
        result.leads_processed,
        result.leads_created,
        result.leads_updated,
        result.leads_skipped,
        result.details["events_stored"],
    )


def expected(counts: Counts) -> tuple[int, ...]:
    return (counts.processed, counts.created, counts.updated, counts.skipped, counts.events)


async def test_full_sync_counts_log_and_source(
    adapter: Adapter, harness: Harness, engine: AsyncEngine
) -> None:
    factory = create_session_factory(engine)
    source_id = await add_source(factory, source_type=adapter.source_type, config=harness.config)

    result = await sync(factory, source_id)

    assert result.status == "success", result.error_messages
    assert counters(result) == expected(adapter.full)
    assert result.errors_count == 0 and result.error_messages == []
    assert result.details["skip_reasons"] == adapter.full.skip_reasons
    assert await counts_in_db(factory) == (adapter.full.events, adapter.leads)
    log = await row(factory, FunnelSyncLog, result.sync_log_id or 0)
    assert (log.status, log.source_id, log.completed_at is not None) == ("success", source_id, True)
    assert (
        log.leads_processed,
        log.leads_created,
        log.leads_updated,
        log.leads_skipped,
        log.errors_count,
    ) == (*expected(adapter.full)[:4], 0)
    assert log.details["pages"] == result.pages >= 1
    source = await row(factory, FunnelSource, source_id)
    assert (source.last_sync_status, source.total_leads_captured) == ("success", adapter.leads)
    assert source.last_sync_at is not None and source.cursor is not None
    assert source.lease_owner is None

    again = await sync(factory, source_id)
    assert again.status == "success", again.error_messages
    assert (again.leads_created, again.leads_updated, again.details["events_stored"]) == (0, 0, 0)
    assert await counts_in_db(factory) == (adapter.full.events, adapter.leads)
    source = await row(factory, FunnelSource, source_id)
    assert source.total_leads_captured == adapter.leads
    forced = await sync(factory, source_id, force=True)
    assert forced.status == "success"
    assert (forced.leads_processed, forced.leads_created, forced.leads_updated) == (
        adapter.full.processed,
        0,
        0,
    )
    assert await counts_in_db(factory) == (adapter.full.events, adapter.leads)


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_a_transient_failure_still_ends_success(
    adapter: Adapter, harness: Harness, engine: AsyncEngine, kind: str
) -> None:
    factory = create_session_factory(engine)
    source_id = await add_source(factory, source_type=adapter.source_type, config=harness.config)
    harness.fail_once(kind)

    result = await sync(factory, source_id)

    assert result.status == "success", result.error_messages
    assert harness.pending() == 0  # the failure was met, and retried
    assert counters(result) == expected(adapter.full)
    source = await row(factory, FunnelSource, source_id)
    assert source.last_sync_status == "success"


async def test_a_persistent_failure_ends_with_the_reason(
    adapter: Adapter, harness: Harness, engine: AsyncEngine
) -> None:
    factory = create_session_factory(engine)
    source_id = await add_source(factory, source_type=adapter.source_type, config=harness.config)
    harness.fail_forever()

    result = await sync(factory, source_id)

    assert result.status == adapter.persistent
    assert result.errors_count >= 1
    assert any(adapter.reason in m for m in result.error_messages), result.error_messages
    assert (result.leads_processed > 0) == (adapter.persistent == "partial")
    log = await row(factory, FunnelSyncLog, result.sync_log_id or 0)
    assert log.status == adapter.persistent and log.error_messages == result.error_messages
    source = await row(factory, FunnelSource, source_id)
    assert (source.last_sync_status, source.lease_owner) == (adapter.persistent, None)
    assert source.total_leads_captured == result.leads_created
    for secret in harness.env.values():
        assert secret not in " ".join(result.error_messages)


# ---- EasyAppointments in direct-MySQL mode, against the local MariaDB ----------------------


@pytest.fixture
def ea_database() -> Iterator[ea_doc.EaDatabase]:
    import uuid

    import pymysql

    data = ea_fake.FakeEasyAppointments()
    ea_fake.seed(data)
    try:
        database = ea_doc.EaDatabase(f"ea_contract_{uuid.uuid4().hex[:10]}")
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB not reachable at 127.0.0.1:3306 ({exc})")
    try:
        database.seed(data)
        yield database
    finally:
        database.close()


async def test_easyappointments_mysql_mode_through_the_engine(
    ea_database: ea_doc.EaDatabase, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("signup_sync.sync.start.utcnow", lambda: ea_doc.NOW)
    factory = create_session_factory(engine)
    config = {
        "mode": "mysql",
        "mysql_host": ea_doc.MYSQL["host"],
        "mysql_port": ea_doc.MYSQL["port"],
        "mysql_user": ea_doc.MYSQL["user"],
        "mysql_database": ea_database.name,
        "mysql_batch": 5,
        "site_timezone": "Europe/Madrid",
        "infer_completed": True,
        "utm_fields": ["custom_field_1"],
    }
    source_id = await add_source(factory, source_type="easyappointments", config=config)

    result = await sync(factory, source_id)

    assert result.status == "success", result.error_messages
    assert counters(result) == expected(EASYAPPOINTMENTS.full)
    assert result.pages == 5  # four of rows, then the cursor (customers and deletions marks)
    assert await counts_in_db(factory) == (EASYAPPOINTMENTS.full.events, EA_LEADS)
    source = await row(factory, FunnelSource, source_id)
    assert (source.last_sync_status, source.total_leads_captured) == ("success", EA_LEADS)
    assert source.cursor is not None and source.cursor["mode"] == "mysql"

    again = await sync(factory, source_id)
    assert again.status == "success"
    assert (again.leads_created, again.leads_updated, again.details["events_stored"]) == (0, 0, 0)
    assert await counts_in_db(factory) == (EASYAPPOINTMENTS.full.events, EA_LEADS)

    # A wrong password ends the run failed, naming no secret.
    wrong = await add_source(
        factory,
        "wrong password",
        source_type="easyappointments",
        config={
            **config,
            "mysql_user": "nobody_here",
            "mysql_password_env": "SIGNUP_SYNC_SOURCE_EA_DB_PASS_TEST",
        },
    )
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_EA_DB_PASS_TEST", "wrong-password-xyz")
    failed = await sync(factory, wrong)
    assert failed.status == "failed" and failed.errors_count == 1
    assert "xyz" not in " ".join(failed.error_messages)
