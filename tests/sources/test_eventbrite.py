"""Eventbrite connector against the fake v3 API (real HTTP on 127.0.0.1).

Expected numbers for the default fake (120 attendees, rules in tests/fakes/eventbrite.py),
worked out by hand:
* no email: i % 29 == 5 -> 5, 34, 63, 92 -> 4 skipped, 116 mapped attendees;
* case-variant duplicates: 7, 38, 69, 100 (same people as 6, 37, 68, 99) -> 112 leads;
* refunded (i % 19 == 6): 6, 25, 44, 63, 82, 101 -> 5 with email;
* cancelled (i % 17 == 4): 4, 21, 38, 55, 72, 89, 106 -> 7;
* checked in (i % 5 == 0, not cancelled): 24 multiples - 25, 55 -> 22, minus 5 (no email) -> 21.
So 116 event_registered (104 active, 7 cancelled, 5 refunded) + 21 event_attended = 137 events.
"""

from __future__ import annotations

from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.events.records import EventRecord
from signup_sync.events.service import IngestOutcome, ingest
from signup_sync.sources import REGISTRY
from signup_sync.sources.base import Page, RetryPolicy, SourceContext
from signup_sync.sources.errors import (
    FatalSourceError,
    PaginationLoopError,
    RetriableSourceError,
    SkipRecord,
)
from signup_sync.sources.eventbrite import EventbriteConfig, EventbriteConnector, map_attendee
from tests.conftest import truncate_all
from tests.fakes.eventbrite import EPOCH, EVENTS, TOKEN, FakeEventbrite, Switch
from tests.helpers import local_access

RUN_START = datetime(2024, 12, 1, tzinfo=UTC)
ORG = "215487369012"
(E1, E1_NAME), (E2, E2_NAME) = EVENTS


@pytest.fixture
def base_url(eb_server: tuple[Switch, str]) -> str:
    return eb_server[1]


@pytest.fixture
def fake(eb_server: tuple[Switch, str]) -> FakeEventbrite:
    return eb_server[0].use(FakeEventbrite(count=120))


def make_ctx(
    base_url: str,
    *,
    cursor: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    force: bool = False,
    **config: Any,
) -> SourceContext:
    if "event_ids" not in config:
        config.setdefault("organization_id", ORG)
    return SourceContext(
        source_id=1,
        access=local_access(),
        source_type="eventbrite",
        name="Rooftop",
        config=EventbriteConfig(base_url=base_url, **config),
        secrets={"token": TOKEN} if secrets is None else secrets,
        cursor=cursor,
        run_started_at=RUN_START,
        since=since,
        until=until,
        force=force,
        retry=retry or RetryPolicy(wait_scale=0),
        transport=transport,
    )


@dataclass
class Run:
    pages: list[Page] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    outcomes: list[IngestOutcome] = field(default_factory=list)

    @property
    def cursor(self) -> dict[str, Any] | None:
        cursors = [p.cursor for p in self.pages if p.cursor is not None]
        return cursors[-1] if cursors else None

    @property
    def attendee_ids(self) -> list[str]:
        return [r["id"] for p in self.pages for r in p.records]


async def run(
    ctx: SourceContext, engine: AsyncEngine | None = None, *, stop_after: int | None = None
) -> Run:
    """Drive the connector the way the engine does: map each page, ingest it, commit it."""
    result = Run()
    factory = async_sessionmaker(engine, expire_on_commit=False) if engine else None
    connector = EventbriteConnector(ctx)
    try:
        async with aclosing(connector.pages()) as pages:
            async for page in pages:
                records: list[EventRecord] = []
                for raw in page.records:
                    try:
                        records.extend(connector.map_record(raw))
                    except SkipRecord as skip:
                        result.skipped.append(skip.reason)
                if factory is not None:
                    async with factory() as session:
                        result.outcomes.extend(await ingest(session, records))
                        await session.commit()
                result.pages.append(page)
                result.events.extend(records)
                if stop_after is not None and len(result.pages) >= stop_after:
                    break
    finally:
        await connector.aclose()
    return result


async def stored(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    query = (
        select(
            FunnelEvent.external_id,
            FunnelEvent.event_type,
            FunnelEvent.status,
            FunnelEvent.occurred_at,
            FunnelEvent.event_metadata,
            Lead.email,
            Lead.first_name,
        )
        .join(Lead, Lead.id == FunnelEvent.lead_id)
        .order_by(FunnelEvent.external_id, FunnelEvent.event_type)
    )
    async with engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def lead_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(Lead))).scalar_one())


def kinds(events: list[EventRecord]) -> Counter[tuple[str, str]]:
    return Counter((e.event_type, e.status) for e in events)


FULL = Counter(
    {
        ("event_registered", "active"): 104,
        ("event_registered", "cancelled"): 7,
        ("event_registered", "refunded"): 5,
        ("event_attended", "active"): 21,
    }
)

# --- mapping ------------------------------------------------------------------------------------

DOC_ATTENDEE: dict[str, Any] = {
    "costs": {
        "gross": {"display": "€28.85", "currency": "EUR", "value": 2885, "major_value": "28.85"}
    },
    "id": "7834512290",
    "changed": "2024-06-14T21:05:33Z",
    "created": "2024-06-02T10:11:45Z",
    "profile": {"first_name": "Ana", "last_name": "Müller", "email": "Ana.Muller@Example.com"},
    "barcodes": [{"status": "used", "barcode": "7834", "changed": "2024-06-14T21:05:33Z"}],
    "checked_in": True,
    "cancelled": False,
    "refunded": False,
    "affiliate": "ig_story_june",
    "status": "Checked In",
    "ticket_class_name": "General Admission",
    "event_id": "812345678901",
    "order_id": "4512987301",
    "ticket_class_id": "1987234411",
    "event": {"id": "812345678901", "name": {"text": "Summer Rooftop Sessions"}},
}


def test_map_doc_attendee_checked_in_gives_registered_and_attended() -> None:
    registered, attended = map_attendee(DOC_ATTENDEE)
    assert registered.event_type == "event_registered"
    assert attended.event_type == "event_attended"
    assert registered.external_id == attended.external_id == "attendee:7834512290"
    assert registered.occurred_at == datetime(2024, 6, 2, 10, 11, 45, tzinfo=UTC)
    assert attended.occurred_at == datetime(2024, 6, 14, 21, 5, 33, tzinfo=UTC)
    assert registered.email == "ana.muller@example.com"
    assert (registered.first_name, registered.last_name) == ("Ana", "Müller")
    assert registered.utm_source == "ig_story_june"
    assert registered.status == attended.status == "active"
    assert registered.source_type == "eventbrite"
    assert registered.metadata == {
        "item": {"kind": "event", "id": "812345678901", "name": "Summer Rooftop Sessions"},
        "attendee_id": "7834512290",
        "order_id": "4512987301",
        "ticket_class": {"id": "1987234411", "name": "General Admission"},
        "status": "Checked In",
        "amount": "28.85",
        "currency": "EUR",
        "affiliate": "ig_story_june",
        "created": "2024-06-02T10:11:45Z",
        "changed": "2024-06-14T21:05:33Z",
    }


def test_map_refunded_and_cancelled_keep_their_status() -> None:
    refunded = {**DOC_ATTENDEE, "checked_in": False, "barcodes": [], "cancelled": True,
                "refunded": True, "status": "Not Attending", "affiliate": None}  # fmt: skip
    (only,) = map_attendee(refunded)
    assert (only.event_type, only.status, only.utm_source) == ("event_registered", "refunded", None)
    cancelled = {**refunded, "refunded": False}
    assert [r.status for r in map_attendee(cancelled)] == ["cancelled"]
    deleted = {**refunded, "refunded": False, "cancelled": False, "status": "Deleted"}
    assert [r.status for r in map_attendee(deleted)] == ["cancelled"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"profile": {"first_name": "Walk-in"}}, "no email"),
        ({"profile": {"email": "  "}}, "no email"),
        ({"id": None}, "no attendee id"),
        ({"created": "yesterday"}, "no valid created time"),
    ],
)
def test_map_unusable_attendees_are_skipped(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(SkipRecord) as info:
        map_attendee({**DOC_ATTENDEE, **change})
    assert info.value.reason == reason


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        EventbriteConfig()
    with pytest.raises(ValidationError, match="exactly one"):
        EventbriteConfig(organization_id=ORG, event_ids=[E1])
    with pytest.raises(ValidationError, match="numeric"):
        EventbriteConfig(event_ids=["abc"])
    with pytest.raises(ValidationError):
        EventbriteConfig(organization_id=ORG, token="secret-in-config")
    assert EventbriteConfig(organization_id=ORG).secret_env_names() == {
        "token": "SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN"
    }
    assert REGISTRY["eventbrite"] is EventbriteConnector


# --- listing ------------------------------------------------------------------------------------


async def test_full_listing_pages_and_events(fake: FakeEventbrite, base_url: str) -> None:
    result = await run(make_ctx(base_url))
    assert [len(p.records) for p in result.pages] == [50, 50, 20]
    assert result.skipped == ["no email"] * 4
    assert kinds(result.events) == FULL
    assert len({e.email for e in result.events}) == 112
    # Organisation-level endpoint, event expansion, Bearer auth (the fake rejects anything else).
    paths = {path for path, _ in fake.requests}
    assert paths == {f"/v3/organizations/{ORG}/attendees/"}
    assert all(params["expand"] == "event" for _, params in fake.requests)
    assert result.cursor == {
        "streams": {f"organization:{ORG}": "2024-06-01T01:59:30Z"},
        "resume": None,
    }

    by_id: dict[str, list[EventRecord]] = {}
    for event in result.events:
        by_id.setdefault(event.external_id or "", []).append(event)
    # Case-variant duplicate: attendee 7 is the same person as attendee 6.
    assert by_id["attendee:7800000007"][0].email == by_id["attendee:7800000006"][0].email
    assert by_id["attendee:7800000006"][0].email == "person00006@example.com"
    # Non-ASCII names survive as given.
    three = by_id["attendee:7800000003"][0]
    assert (three.first_name, three.last_name) == (
        fake.flags(3).first_name,
        fake.flags(3).last_name,
    )
    assert not f"{three.first_name}{three.last_name}".isascii()
    assert three.metadata and three.metadata["item"] == {"kind": "event", "id": E2, "name": E2_NAME}
    assert [e.utm_source for e in by_id["attendee:7800000001"]] == ["ig_story_june"]
    assert [e.utm_source for e in by_id["attendee:7800000002"]] == ["ebdssbdestsearch"]
    # Checked in: both events, same external id; refunded: kept, not active.
    assert [(e.event_type, e.status) for e in by_id["attendee:7800000010"]] == [
        ("event_registered", "active"),
        ("event_attended", "active"),
    ]
    assert [(e.event_type, e.status) for e in by_id["attendee:7800000025"]] == [
        ("event_registered", "refunded")
    ]


async def test_injected_transport_serves_the_same_bytes(fake: FakeEventbrite) -> None:
    result = await run(make_ctx("http://eventbrite.test/v3/", transport=fake.transport()))
    assert kinds(result.events) == FULL


async def test_per_event_listing_reads_only_configured_events(
    fake: FakeEventbrite, base_url: str
) -> None:
    result = await run(make_ctx(base_url, event_ids=[E1]))
    assert {path for path, _ in fake.requests} == {f"/v3/events/{E1}/attendees/"}
    assert [len(p.records) for p in result.pages] == [50, 10]
    assert {e.metadata["item"]["name"] for e in result.events if e.metadata} == {E1_NAME}
    assert result.cursor is not None
    assert set(result.cursor["streams"]) == {f"event:{E1}"}


async def test_webhook_fetch_maps_like_the_sync(fake: FakeEventbrite, base_url: str) -> None:
    synced = await run(make_ctx(base_url))
    url = f"{base_url}events/{E1}/attendees/7800000010/"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        fetched = (await client.get(url, params={"expand": "event"})).json()
    expected = [e for e in synced.events if e.external_id == "attendee:7800000010"]
    assert map_attendee(fetched) == expected
    assert len(expected) == 2


# --- failures -----------------------------------------------------------------------------------


async def test_bad_json_429_and_500_are_retried(fake: FakeEventbrite, base_url: str) -> None:
    fake.inject("bad_json", page=1)
    fake.inject("429", page=2)
    fake.inject("500", page=3)
    result = await run(make_ctx(base_url))
    assert kinds(result.events) == FULL
    assert len(fake.requests) == 6


async def test_rate_limit_error_carries_retry_after(fake: FakeEventbrite, base_url: str) -> None:
    fake.inject("429", page=1)
    with pytest.raises(RetriableSourceError, match="rate limited") as info:
        await run(make_ctx(base_url, retry=RetryPolicy(attempts=1, wait_scale=0)))
    assert info.value.retry_after == 2.0


async def test_persistent_rate_limit_gives_up_retriable(
    fake: FakeEventbrite, base_url: str
) -> None:
    fake.rate_limit_per_hour = 1
    with pytest.raises(RetriableSourceError, match="rate limited") as info:
        await run(make_ctx(base_url))
    assert info.value.retry_after is None  # bare HIT_RATE_LIMIT: back-off, no header
    assert len(fake.requests) == 1 + 5


async def test_malformed_page_is_retriable_and_resumable(
    fake: FakeEventbrite, base_url: str
) -> None:
    fake.inject("malformed", page=2)
    partial = Run()
    connector = EventbriteConnector(make_ctx(base_url))
    with pytest.raises(RetriableSourceError, match="malformed page"):
        async for page in connector.pages():
            partial.pages.append(page)
    await connector.aclose()
    assert [len(p.records) for p in partial.pages] == [50]
    rest = await run(make_ctx(base_url, cursor=partial.cursor))
    assert [len(p.records) for p in rest.pages] == [50, 20]
    assert set(partial.attendee_ids) | set(rest.attendee_ids) == {
        fake.attendee_id(i) for i in range(120)
    }


async def test_repeated_continuation_is_a_loop(fake: FakeEventbrite, base_url: str) -> None:
    fake.inject("loop", page=2)
    with pytest.raises(PaginationLoopError):
        await run(make_ctx(base_url))


async def test_bad_token_is_fatal_and_not_echoed(fake: FakeEventbrite, base_url: str) -> None:
    with pytest.raises(FatalSourceError, match="401") as info:
        await run(make_ctx(base_url, secrets={"token": "not-the-token-XYZ"}))
    assert "not-the-token-XYZ" not in str(info.value)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}organizations/{ORG}/attendees/")
    assert response.status_code == 401
    assert response.json() == {
        "status_code": 401,
        "error": "NO_AUTH",
        "error_description": "An OAuth token is required for this request.",
    }


async def test_missing_token_names_the_variable(fake: FakeEventbrite, base_url: str) -> None:
    with pytest.raises(FatalSourceError, match="EBT_PROD"):
        await run(make_ctx(base_url, secrets={}, token_env="EBT_PROD"))
    assert len(fake.requests) == 0


async def test_unknown_event_is_fatal(fake: FakeEventbrite, base_url: str) -> None:
    with pytest.raises(FatalSourceError, match="404"):
        await run(make_ctx(base_url, event_ids=["999"]))


# --- cursors ------------------------------------------------------------------------------------


async def test_cursor_is_capped_at_run_start(fake: FakeEventbrite, base_url: str) -> None:
    fake.update(119, changed=RUN_START + timedelta(days=2))
    result = await run(make_ctx(base_url))
    assert result.cursor == {
        "streams": {f"organization:{ORG}": "2024-12-01T00:00:00Z"},
        "resume": None,
    }


async def test_expired_continuation_on_resume_restarts_the_listing(
    fake: FakeEventbrite, base_url: str
) -> None:
    first = await run(make_ctx(base_url), stop_after=1)
    fake.expire_tokens()
    fake.requests.clear()
    rest = await run(make_ctx(base_url, cursor=first.cursor))
    assert "continuation" in fake.requests[0][1]
    assert "continuation" not in fake.requests[1][1]
    assert kinds(rest.events) == FULL


async def test_backfill_window_uses_changed_since_and_leaves_cursor(
    fake: FakeEventbrite, base_url: str
) -> None:
    since, until = EPOCH + timedelta(minutes=100), EPOCH + timedelta(minutes=110)
    stale = {"streams": {f"organization:{ORG}": "2024-06-01T01:59:30Z"}, "resume": None}
    result = await run(make_ctx(base_url, cursor=stale, since=since, until=until))
    assert fake.requests[0][1]["changed_since"] == "2024-06-01T01:40:00Z"
    assert result.attendee_ids == [fake.attendee_id(i) for i in range(100, 111)]
    assert all(p.cursor is None for p in result.pages)


async def test_force_ignores_the_cursor(fake: FakeEventbrite, base_url: str) -> None:
    stale = {"streams": {f"organization:{ORG}": "2024-06-01T01:59:30Z"}, "resume": None}
    result = await run(make_ctx(base_url, cursor=stale, force=True))
    assert "changed_since" not in fake.requests[0][1]
    assert kinds(result.events) == FULL


# --- through ingestion (SQLite and PostgreSQL) --------------------------------------------------


async def test_full_sync_then_second_run_adds_nothing(
    fake: FakeEventbrite, base_url: str, engine: AsyncEngine
) -> None:
    first = await run(make_ctx(base_url), engine)
    assert Counter(o.status for o in first.outcomes) == {"accepted": 137}
    rows = await stored(engine)
    assert Counter((r[1], r[2]) for r in rows) == FULL
    assert await lead_count(engine) == 112

    again = await run(make_ctx(base_url, cursor=first.cursor), engine)
    assert again.attendee_ids == [fake.attendee_id(i) for i in range(114, 120)]  # the overlap
    assert {o.status for o in again.outcomes} == {"duplicate"}
    forced = await run(make_ctx(base_url, force=True), engine)
    assert {o.status for o in forced.outcomes} == {"duplicate"}
    assert await stored(engine) == rows
    assert await lead_count(engine) == 112


async def test_incremental_run_picks_up_only_changes(
    fake: FakeEventbrite, base_url: str, engine: AsyncEngine
) -> None:
    first = await run(make_ctx(base_url), engine)
    fake.count = 130
    fake.update(3, cancelled=True, refunded=True, changed=EPOCH + timedelta(days=3))
    fake.requests.clear()
    second = await run(make_ctx(base_url, cursor=first.cursor), engine)

    # Cursor 01:59:30 minus the 5 min overlap; inclusive.
    assert [params.get("changed_since") for _, params in fake.requests] == ["2024-06-01T01:54:30Z"]
    assert second.attendee_ids == [fake.attendee_id(i) for i in (3, *range(114, 130))]
    # New: 120 (refunded), 122-129 (123 cancelled, 125 checked in); 121 has no email.
    accepted = [o for o in second.outcomes if o.status == "accepted"]
    assert len(accepted) == 10
    assert [o.event_type for o in accepted].count("event_attended") == 1
    changed = [o for o in second.outcomes if o.changed]
    assert len(changed) == 1
    assert second.cursor == {
        "streams": {f"organization:{ORG}": "2024-06-04T00:00:00Z"},
        "resume": None,
    }
    rows = await stored(engine)
    assert len(rows) == 137 + 10


async def test_status_change_updates_the_stored_event(
    fake: FakeEventbrite, base_url: str, engine: AsyncEngine
) -> None:
    first = await run(make_ctx(base_url), engine)
    fake.update(
        10, checked_in=False, cancelled=True, refunded=True, changed=EPOCH + timedelta(days=9)
    )
    await run(make_ctx(base_url, cursor=first.cursor), engine)
    statuses = {(r[0], r[1]): r[2] for r in await stored(engine)}
    assert statuses[("attendee:7800000010", "event_registered")] == "refunded"
    # The attended event was emitted before; it stays (check-outs don't erase attendance).
    assert statuses[("attendee:7800000010", "event_attended")] == "active"
    assert statuses[("attendee:7800000011", "event_registered")] == "active"


@pytest.mark.parametrize("scope", ["organization", "events"])
@pytest.mark.parametrize("kill_after", [1, 2, 3])
async def test_kill_after_page_k_then_resume_matches_uninterrupted(
    fake: FakeEventbrite, base_url: str, engine: AsyncEngine, kill_after: int, scope: str
) -> None:
    config: dict[str, Any] = {"event_ids": [E1, E2]} if scope == "events" else {}
    # Lists are not ordered by `changed`: an early attendee changed last must not let a
    # resumed run skip the pages after the crash.
    fake.update(10, changed=EPOCH + timedelta(days=9))
    whole = await run(make_ctx(base_url, **config), engine)
    expected = await stored(engine)
    await truncate_all(engine)

    partial = await run(make_ctx(base_url, **config), engine, stop_after=kill_after)
    fake.requests.clear()
    rest = await run(make_ctx(base_url, cursor=partial.cursor, **config), engine)
    assert await stored(engine) == expected
    assert rest.cursor == whole.cursor
    resumed = partial.cursor["resume"] if partial.cursor else None
    if resumed is not None:
        # The interrupted listing continues first, where it stopped, not from its start.
        path, params = fake.requests[0]
        assert resumed["stream"].split(":")[1] in path
        assert params.get("continuation") == resumed["continuation"]
