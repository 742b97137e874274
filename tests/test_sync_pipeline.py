"""How a sync page moves through the engine: read and mapped ahead, committed with few
statements, its text checked cheaply. (Speed itself is measured by ``bench``, not here.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync import sources
from signup_sync.db.models import FunnelEvent, FunnelSource, FunnelSyncLog
from signup_sync.db.session import create_session_factory
from signup_sync.events.fold import _folded_lead_row, _lead_row_of_one, lead_row
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.sources.base import Page
from signup_sync.sync import lease, runner
from signup_sync.sync.clean import clean_event, is_storable_json
from signup_sync.sync.runner import MappedPage, ReadAhead, run_sync
from signup_sync.sync.tally import Tally
from tests.conftest import truncate_all
from tests.sync_fakes import (
    BASE_TIME,
    FakeConnector,
    add_source,
    count_rows,
    fake_connector,
    record,
    snapshot,
)

__all__ = ["fake_connector"]


def _page(n: int) -> Page:
    return Page(records=[{"n": n}], cursor={"page": n}, label=f"page {n}")


async def test_the_next_page_is_read_and_mapped_while_the_current_one_is_in_use() -> None:
    async def pages() -> AsyncIterator[Page]:
        for n in (1, 2, 3):
            yield _page(n)

    prepared: list[int] = []

    def prepare(page: Page) -> MappedPage:
        prepared.append(page.records[0]["n"])
        return MappedPage(page, Tally(pages=1, processed=1), [], [])

    ahead = ReadAhead(pages(), prepare)
    first = await anext(ahead)
    assert first.page.records == [{"n": 1}]
    for _ in range(5):  # the current page's commit awaits the database: the loop runs
        await asyncio.sleep(0)
    assert prepared == [1, 2]  # page 2 mapped already; page 3 not (one page ahead only)
    assert [m.page.records[0]["n"] async for m in ahead] == [2, 3]
    await ahead.stop()


async def _running_log(engine: AsyncEngine, source_id: int) -> int:
    factory = create_session_factory(engine)
    async with factory() as session:
        source = await session.get(FunnelSource, source_id)
        assert source is not None
        log = FunnelSyncLog(source_id=source_id, source_type=source.source_type, status="running")
        session.add(log)
        source.lease_owner = "us"
        source.lease_expires_at = BASE_TIME
        await session.commit()
        return log.id


async def test_a_page_renews_the_lease_and_writes_the_log_only_while_the_lease_is_ours(
    engine: AsyncEngine,
) -> None:
    factory = create_session_factory(engine)
    source_id = await add_source(factory)
    log_id = await _running_log(engine, source_id)

    async def renew(owner: str, processed: int, cursor: Any = "page") -> bool:
        async with factory() as session:
            values = {k: 0 for k in lease.PAGE_LOG_KEYS}
            values.update(
                leads_processed=processed, error_messages=[], details={"pages": processed}
            )
            ok = await lease.store_page(
                session,
                source_id,
                owner=owner,
                ttl_seconds=60,
                cursor={"at": processed} if cursor == "page" else cursor,
                leads_created=1,
                log_id=log_id,
                log_values=values,
            )
            await session.commit()
            return ok

    async def state() -> tuple[Any, int, Any]:
        async with factory() as session:
            source = await session.get(FunnelSource, source_id, populate_existing=True)
            log = await session.get(FunnelSyncLog, log_id, populate_existing=True)
            assert source is not None and log is not None
            return source.cursor, log.leads_processed, log.details

    assert await renew("us", 5)
    assert await state() == ({"at": 5}, 5, {"pages": 5})
    assert not await renew("another run", 9)  # not our lease: neither source nor log move
    assert await state() == ({"at": 5}, 5, {"pages": 5})

    async with factory() as session:  # someone closed the log (e.g. it was reaped)
        log = await session.get(FunnelSyncLog, log_id)
        assert log is not None
        log.status = "failed"
        await session.commit()
    assert await renew("us", 7)  # the lease is still ours; a closed log is left alone
    assert await state() == ({"at": 7}, 5, {"pages": 5})
    assert await renew("us", 8, cursor=None)  # a page without a cursor keeps the stored one
    assert await state() == ({"at": 7}, 5, {"pages": 5})
    async with factory() as session:
        source = await session.get(FunnelSource, source_id)
        assert source is not None and source.total_leads_captured == 3


async def test_on_postgresql_a_pages_bookkeeping_is_one_statement(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: two statements in one transaction (see lease.renew)")
    factory = create_session_factory(engine)
    source_id = await add_source(factory)
    log_id = await _running_log(engine, source_id)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with factory() as session:
            values: dict[str, Any] = {k: 0 for k in lease.PAGE_LOG_KEYS}
            values.update(leads_processed=1, error_messages=["x"], details={})
            assert await lease.store_page(
                session,
                source_id,
                owner="us",
                ttl_seconds=60,
                cursor={"at": 1},
                leads_created=1,
                log_id=log_id,
                log_values=values,
            )
            await session.commit()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements
    async with factory() as session:
        processed = await session.scalar(
            select(FunnelSyncLog.leads_processed).where(FunnelSyncLog.id == log_id)
        )
    assert processed == 1


def test_clean_metadata_is_checked_in_one_pass_and_kept_as_is() -> None:
    assert is_storable_json({"a": "José 😀", "n": [1, None, {"b": True}]})
    assert not is_storable_json({"a": "x\x00"})
    assert not is_storable_json({"k\x00": 1})
    assert not is_storable_json({"a": "\ud800"})
    assert not is_storable_json({"a": "\ud83d\ude00"})  # a pair the walk must join
    assert not is_storable_json({1: "non-string key"})
    # A backslash followed by "u0000" is text, not NUL: walking it changes nothing.
    assert not is_storable_json({"a": "\\u0000"})

    clean = {"affiliate": "IG", "answers": [{"q": "Zoë"}]}
    record = EventRecord(
        source_type="eventbrite",
        event_type="event_registered",
        occurred_at=BASE_TIME,
        email="a@example.com",
        metadata=clean,
    )
    assert clean_event(record).metadata is clean  # not rebuilt
    record.metadata = {"note": "a\x00b"}
    assert clean_event(record).metadata == {"note": "ab"}


async def test_only_the_duplicate_lookup_is_planned_with_its_parameters(
    engine: AsyncEngine,
) -> None:
    """The lookup must not keep a generic plan made while the table was small; the writes
    should (re-planning them, their foreign-key checks and triggers cost more than they do)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plan caching is PostgreSQL's")
    factory = create_session_factory(engine)
    source_id = await add_source(factory)
    async with factory() as session:
        for page in range(8):  # more than the 5 custom plans before PostgreSQL goes generic
            records = [
                EventRecord(
                    source_type="eventbrite",
                    event_type="event_registered",
                    occurred_at=BASE_TIME,
                    email=f"p{page}-{i}@example.com",
                    external_id=f"{page}-{i}",
                    source_id=source_id,
                )
                for i in range(3)
            ]
            outcomes = await ingest(session, records)
            assert [o.status for o in outcomes] == ["accepted"] * 3
        plans = (
            await session.execute(
                text(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE '%funnel_events%'"
                )
            )
        ).all()
        await session.rollback()
    lookup = [(g, c) for s, g, c in plans if s.lstrip().startswith("SELECT funnel_events.id")]
    writes = [(g, c) for s, g, c in plans if "INSERT INTO funnel_events" in s]
    assert lookup and all(g == 0 and c >= 8 for g, c in lookup), plans
    assert writes and all(g > 0 for g, _ in writes), plans


async def test_rows_keep_every_value_through_the_json_transport(engine: AsyncEngine) -> None:
    """PostgreSQL's rows travel as one JSON document: metadata None is still JSON null (not
    SQL NULL), nested metadata and non-ASCII text are intact, times keep their microseconds."""
    factory = create_session_factory(engine)
    at = BASE_TIME.replace(microsecond=123456)
    records = [
        EventRecord(
            source_type="eventbrite",
            event_type="event_registered",
            occurred_at=at,
            email=f"j{i}@example.com",
            first_name="Zoë 美咲",
            external_id=f"j{i}",
            metadata=meta,
        )
        for i, meta in enumerate([None, {"a": [1, 2.5, None, {"b": "ñ"}], "big": 2**53 + 1}])
    ]
    async with factory() as session:
        await ingest(session, records)
        await session.commit()
        rows = (
            await session.execute(
                text(
                    "SELECT e.external_id, e.metadata IS NULL, l.first_name"
                    " FROM funnel_events e JOIN funnel_leads l ON l.id = e.lead_id"
                    " ORDER BY e.external_id"
                )
            )
        ).all()
        query = select(FunnelEvent.event_metadata, FunnelEvent.occurred_at)
        stored = (await session.execute(query.order_by(FunnelEvent.external_id))).all()
    assert [tuple(r) for r in rows] == [
        ("j0", False, "Zoë 美咲"),
        ("j1", False, "Zoë 美咲"),
    ]
    assert [m for m, _ in stored] == [None, {"a": [1, 2.5, None, {"b": "ñ"}], "big": 2**53 + 1}]
    assert [t for _, t in stored] == [at, at]


def test_the_one_record_lead_row_is_the_general_one() -> None:
    now = BASE_TIME + timedelta(days=3)
    base = {"source_type": "eventbrite", "occurred_at": BASE_TIME, "email": "a@example.com"}
    cases = [
        EventRecord(event_type="event_registered", **base),
        EventRecord(event_type="event_attended", status="cancelled", **base),
        EventRecord(
            event_type="converted",
            first_name="Zoë",
            last_name="",
            phone="+1 305 555 0100",
            phone_e164="+13055550100",
            company="Acme",
            utm_source="ig",
            utm_medium="story",
            utm_campaign="june",
            metadata={"item": {"kind": "event", "id": "81", "name": "Rooftop"}},
            **base,
        ),
        EventRecord(event_type="lead_captured", gclid="g1", landing_page="/x", **base),
        EventRecord(
            source_type="manual",
            event_type="signup_completed",
            occurred_at=BASE_TIME,
            email=None,
            phone_e164="+447946000111",
            status="refunded",
        ),
    ]
    for one in cases:
        assert _lead_row_of_one(one, now) == _folded_lead_row([one], now)
        assert list(_lead_row_of_one(one, now)) == list(_folded_lead_row([one], now))
    assert lead_row(cases[:2], now) == _folded_lead_row(cases[:2], now)


def test_text_fields_are_cleaned_only_when_one_needs_it() -> None:
    record = EventRecord(
        source_type="eventbrite",
        event_type="event_registered",
        occurred_at=BASE_TIME,
        email="a@example.com",
        first_name="Ana\ud83d",
        last_name="\ude00Lee",  # a half of a pair in each field: both are lone
        company="Ac\x00me",
    )
    clean_event(record)
    assert (record.first_name, record.last_name, record.company) == (
        "Ana\ufffd",
        "\ufffdLee",
        "Acme",
    )
    fine = EventRecord(
        source_type="eventbrite",
        event_type="event_registered",
        occurred_at=BASE_TIME,
        email="b@example.com",
        first_name="Zoë",
    )
    assert clean_event(fine).first_name == "Zoë"


class OverlappingConnector(FakeConnector):
    """Each page re-reads the previous page's last record (a cursor that keeps an overlap)."""

    async def pages(self) -> AsyncIterator[Page]:
        rows = self._rows()
        size = self.config.page_size
        for number, start in enumerate(range(0, len(rows), size), 1):
            chunk = rows[max(start - 1, 0) : start + size]
            yield Page(
                records=chunk,
                cursor={"after": [chunk[-1]["updated"], chunk[-1]["id"]]},
                label=f"page {number}",
            )


async def test_overlapping_pages_committed_two_at_a_time_store_the_same_rows(
    engine: AsyncEngine, fake_connector: type[FakeConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next page's lookup runs before the page it overlaps has committed: the re-read
    event must still end up stored once, as if the pages had gone one by one."""
    factory = create_session_factory(engine)
    FakeConnector.data["default"] = [record(i, f"p{i % 7}@example.com") for i in range(1, 41)]
    source_id = await add_source(factory, config={"page_size": 4})
    once = await run_sync(factory, source_id)
    expected = await snapshot(factory)

    await truncate_all(engine)
    monkeypatch.setitem(sources.REGISTRY, "easyappointments", OverlappingConnector)
    source_id = await add_source(factory, config={"page_size": 4})
    overlapping = await run_sync(factory, source_id)

    assert overlapping.status == "success", overlapping.error_messages
    assert await snapshot(factory) == expected
    assert (overlapping.leads_created, overlapping.pages) == (once.leads_created, once.pages)
    assert overlapping.leads_processed == once.leads_processed + once.pages - 1
    assert overlapping.details["events_stored"] == once.details["events_stored"] == 40


async def test_a_page_that_fails_to_commit_takes_the_page_after_it_down(
    engine: AsyncEngine, fake_connector: type[FakeConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page 3 may be looked up while page 2 commits; page 2 losing the lease must leave only
    page 1 stored, with page 1's cursor, so the next run resumes there."""
    factory = create_session_factory(engine)
    FakeConnector.data["default"] = [record(i, f"u{i}@example.com") for i in range(1, 13)]
    source_id = await add_source(factory)
    real = lease.store_page
    calls = 0

    async def lost_on_page_two(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        return False if calls == 2 else await real(*args, **kwargs)

    monkeypatch.setattr(lease, "store_page", lost_on_page_two)
    result = await run_sync(factory, source_id)

    assert result.status == "partial" and "lease lost" in result.error_messages[-1]
    assert result.pages == 1 and result.leads_created == 3
    assert await count_rows(factory, "funnel_events") == 3
    async with factory() as session:
        source = await session.get(FunnelSource, source_id)
        assert source is not None and source.cursor == {"after": [3, 3]}
        log = await session.get(FunnelSyncLog, result.sync_log_id)
        assert log is not None and (log.leads_processed, log.leads_created) == (3, 3)


async def test_on_postgresql_the_next_page_is_looked_up_while_a_page_commits(
    engine: AsyncEngine, fake_connector: type[FakeConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = create_session_factory(engine)
    FakeConnector.data["default"] = [record(i, f"u{i}@example.com") for i in range(1, 10)]
    source_id = await add_source(factory)
    order: list[str] = []
    real_ingest, real_store = runner.ingest, lease.store_page

    async def ingest(session: Any, records: Any, **kwargs: Any) -> Any:
        order.append(f"lookup {records[0].external_id}")
        return await real_ingest(session, records, **kwargs)

    async def store_page(*args: Any, **kwargs: Any) -> bool:
        stored = await real_store(*args, **kwargs)
        order.append(f"stored {kwargs['cursor']['after'][1]}")
        return stored

    monkeypatch.setattr(runner, "ingest", ingest)
    monkeypatch.setattr(lease, "store_page", store_page)
    result = await run_sync(factory, source_id)
    assert result.status == "success" and result.pages == 3
    if engine.dialect.name == "postgresql":  # page 2's lookups start before page 1 is stored
        assert order.index("lookup appointment:4") < order.index("stored 3"), order
    else:  # one connection, one writer: strictly one page after the other
        assert order == [
            "lookup appointment:1",
            "stored 3",
            "lookup appointment:4",
            "stored 6",
            "lookup appointment:7",
            "stored 9",
        ]


async def test_a_page_kept_waiting_by_the_previous_one_lets_go_of_its_locks_and_reruns(
    engine: AsyncEngine, fake_connector: type[FakeConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that waits on the previous page holds the shared erasure lock; an erasure
    queued behind it could block the previous page (a cycle through Python that
    PostgreSQL cannot detect). So the wait is bounded: past it, the page rolls back and
    runs again once the previous one is done, with the same result."""
    factory = create_session_factory(engine)
    FakeConnector.data["default"] = [record(i, f"u{i % 4}@example.com") for i in range(1, 10)]
    source_id = await add_source(factory)
    once = await run_sync(factory, source_id)
    expected = await snapshot(factory)

    await truncate_all(engine)
    source_id = await add_source(factory)
    monkeypatch.setattr(runner, "PREVIOUS_PAGE_PATIENCE", 0.05)
    real_ingest, real_store = runner.ingest, lease.store_page
    lookups: list[str] = []

    async def ingest(session: Any, records: Any, **kwargs: Any) -> Any:
        lookups.append(records[0].external_id)
        return await real_ingest(session, records, **kwargs)

    async def slow_store_page(*args: Any, **kwargs: Any) -> bool:
        await asyncio.sleep(0.3)  # the previous page is slow to finish
        return await real_store(*args, **kwargs)

    monkeypatch.setattr(runner, "ingest", ingest)
    monkeypatch.setattr(lease, "store_page", slow_store_page)
    slow = await run_sync(factory, source_id)

    assert slow.status == "success", slow.error_messages
    assert await snapshot(factory) == expected
    assert (slow.leads_created, slow.leads_updated) == (once.leads_created, once.leads_updated)
    if engine.dialect.name == "postgresql":  # pages 2 and 3 let go and ran again
        assert lookups.count("appointment:4") >= 2 and lookups.count("appointment:7") >= 2
    else:
        assert lookups == ["appointment:1", "appointment:4", "appointment:7"]
