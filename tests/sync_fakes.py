"""A fake connector for the sync engine's tests: pages from an in-memory list.

Records are dicts ``{id, email, updated, status, bad}`` read in ``(updated, id)`` order;
the cursor is the last ``(updated, id)`` of a page, so a resumed run reads only what it
has not committed. Tests steer it through class attributes (reset by ``fake_connector``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

import pytest
from pydantic import Field
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync import sources
from signup_sync.db.models import FunnelEvent, FunnelSource, Lead
from signup_sync.events.records import EventRecord
from signup_sync.sources.base import Page, SourceConfig, SourceContext
from signup_sync.sources.errors import FatalSourceError, RetriableSourceError, SkipRecord

BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Killed(BaseException):
    """Escapes everything the engine catches: the run stops as if its process died."""


class FakeConfig(SourceConfig):
    base_url: str = "http://fake.invalid"
    dataset: str = "default"
    page_size: int = Field(default=3, ge=1)
    api_key_env: str | None = None


def record(i: int, email: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": i, "email": email, "updated": i, "status": "active", **extra}


class FakeConnector:
    source_type: ClassVar[str] = "easyappointments"
    config_model: ClassVar[type[SourceConfig]] = FakeConfig

    data: ClassVar[dict[str, list[dict[str, Any]]]] = {}
    contexts: ClassVar[list[SourceContext]] = []
    # (page number, kind): raise at the start of that page. kind: retriable|fatal|kill|secret
    fail: ClassVar[tuple[int, str] | None] = None
    # The next run to start waits on this event before its first page (then clears it).
    hold: ClassVar[asyncio.Event | None] = None
    entered: ClassVar[asyncio.Event | None] = None
    closed: ClassVar[int] = 0

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config = cast(FakeConfig, ctx.config)
        FakeConnector.contexts.append(ctx)

    def _rows(self) -> list[dict[str, Any]]:
        rows = sorted(self.data.get(self.config.dataset, []), key=lambda r: (r["updated"], r["id"]))
        cursor = None if self.ctx.force else self.ctx.cursor
        if cursor is not None:
            after = tuple(cursor["after"])
            rows = [r for r in rows if (r["updated"], r["id"]) > after]
        if self.ctx.since is not None:
            rows = [r for r in rows if occurred(r) >= self.ctx.since]
        if self.ctx.until is not None:
            rows = [r for r in rows if occurred(r) < self.ctx.until]
        return rows

    async def pages(self) -> AsyncIterator[Page]:
        if self.config.api_key_env:
            _ = self.ctx.secrets["api_key"]
        hold, FakeConnector.hold = FakeConnector.hold, None
        if FakeConnector.entered is not None:
            FakeConnector.entered.set()
        if hold is not None:
            await hold.wait()
        rows = self._rows()
        size = self.config.page_size
        for number, start in enumerate(range(0, len(rows), size), 1):
            if self.fail and self.fail[0] == number:
                kind = self.fail[1]
                if kind == "kill":
                    raise Killed
                if kind == "fatal":
                    raise FatalSourceError(f"page {number}: not authorised (401)")
                if kind == "secret":
                    raise FatalSourceError(f"rejected key {self.ctx.secrets['api_key']}")
                raise RetriableSourceError(f"page {number}: server error 503")
            chunk = rows[start : start + size]
            yield Page(
                records=chunk,
                cursor={"after": [chunk[-1]["updated"], chunk[-1]["id"]]},
                label=f"page {number}",
            )

    def map_record(self, raw: dict[str, Any]) -> list[EventRecord]:
        if raw.get("bad"):
            raise ValueError("unparseable start time")
        if not raw.get("email"):
            raise SkipRecord("no email")
        return [
            EventRecord(
                source_type="easyappointments",
                event_type="appointment_booked",
                occurred_at=occurred(raw),
                email=raw["email"].strip().lower(),
                first_name=raw.get("name"),
                external_id=f"appointment:{raw['id']}",
                status=raw["status"],
                metadata={
                    "item": {"kind": "appointment", "id": str(raw["id"]), "name": None},
                    **raw.get("meta", {}),
                },
            )
        ]

    async def aclose(self) -> None:
        FakeConnector.closed += 1


def occurred(raw: dict[str, Any]) -> datetime:
    return BASE_TIME + timedelta(days=int(raw["id"]))


# Seven records, pages of three: hand-counted in test_sync_engine.
STANDARD = [
    record(1, "a@example.com"),
    record(2, "b@example.com"),
    record(3, None),  # skipped: no email
    record(4, "A@Example.COM"),  # same person as 1: a new event for a known lead
    record(5, "c@example.com", status="cancelled"),  # a lead seen only cancelled: still new
    record(6, "x@example.com", bad=True),  # the mapping raises: skipped and an error
    record(7, "d@example.com"),
]


@pytest.fixture
def fake_connector(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeConnector]]:
    monkeypatch.setitem(sources.REGISTRY, "easyappointments", FakeConnector)
    # These engine tests use zoom as "a pulled type with no connector registered".
    monkeypatch.delitem(sources.REGISTRY, "zoom", raising=False)
    FakeConnector.data = {"default": [dict(r) for r in STANDARD]}
    FakeConnector.contexts = []
    FakeConnector.fail = None
    FakeConnector.hold = None
    FakeConnector.entered = None
    FakeConnector.closed = 0
    yield FakeConnector


async def add_source(
    factory: async_sessionmaker[AsyncSession],
    name: str = "main",
    *,
    source_type: str = "easyappointments",
    config: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    schedule: str | None = None,
) -> int:
    async with factory() as session:
        source = FunnelSource(
            source_type=source_type,
            name=name,
            is_active=True,
            schedule=schedule,
            config=config or {},
            total_leads_captured=0,
        )
        if created_at is not None:
            source.created_at = created_at
        session.add(source)
        await session.commit()
        return source.id


async def snapshot(factory: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Leads and events without ids or insert times: what two equivalent runs must share."""
    async with factory() as session:
        leads = (
            await session.execute(
                select(Lead.email, Lead.stage, Lead.first_seen_at, Lead.last_seen_at).order_by(
                    Lead.email
                )
            )
        ).all()
        events = (
            await session.execute(
                select(
                    FunnelEvent.source_type,
                    FunnelEvent.external_id,
                    FunnelEvent.event_type,
                    FunnelEvent.status,
                    FunnelEvent.occurred_at,
                    Lead.email,
                )
                .join(Lead, Lead.id == FunnelEvent.lead_id)
                .order_by(FunnelEvent.external_id, FunnelEvent.event_type)
            )
        ).all()
        sources_ = (
            await session.execute(
                select(FunnelSource.name, FunnelSource.cursor, FunnelSource.total_leads_captured)
            )
        ).all()
    return {
        "leads": [tuple(r) for r in leads],
        "events": [tuple(r) for r in events],
        "sources": [tuple(r) for r in sources_],
    }


async def count_rows(factory: async_sessionmaker[AsyncSession], table: str) -> int:
    async with factory() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608
