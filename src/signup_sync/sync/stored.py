"""What the engine lets a connector read of what was stored (``SourceContext.stored``).

Connectors never open the database; some need to know what earlier runs stored: Zoom links
an attendance row to its registrant's lead by ``registrant_id``, EasyAppointments compares
the appointment ids it stored with the ones still at the source to see deletions. Each
look-up is one query over a set (a page's ids, a keyset chunk), never one per record.

On PostgreSQL the engine commits a page while the connector reads the next one; a look-up
first waits until every page yielded before it is settled (``PageBarrier``), so it sees
them (a registrant list committed just before the participants that refer to it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.sources.base import StoredRef

# external ids per query: under SQLite's bound-parameter limit.
FIND_CHUNK = 500


class PageBarrier:
    """Counts pages handed to the engine and pages settled (committed, rolled back or
    failed); ``settled()`` waits until every page handed over so far is."""

    def __init__(self) -> None:
        self.handed = 0
        self.done = 0
        self._waiters: list[asyncio.Future[None]] = []

    def handed_over(self) -> None:
        self.handed += 1

    def page_settled(self, _: object = None) -> None:
        """One page is settled (usable as a task's done callback)."""
        self.done += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def settled(self) -> None:
        target = self.handed
        while self.done < target:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


_REF_COLUMNS = (
    FunnelEvent.id,
    FunnelEvent.external_id,
    FunnelEvent.event_type,
    FunnelEvent.status,
    FunnelEvent.occurred_at,
    FunnelEvent.created_at,
    Lead.email,
    Lead.phone_e164,
)


def _refs() -> Any:
    return select(*_REF_COLUMNS).join(Lead, Lead.id == FunnelEvent.lead_id)


def _as_refs(rows: Sequence[tuple[object, ...]]) -> list[StoredRef]:
    return [StoredRef(*row) for row in rows]  # type: ignore[arg-type]


class StoredLookup:
    """``StoredEvents`` over the engine's database for one source."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        source_id: int,
        source_type: str,
        barrier: PageBarrier | None = None,
    ) -> None:
        self.factory = factory
        self.source_id = source_id
        self.source_type = source_type
        self.barrier = barrier

    async def _wait(self) -> None:
        if self.barrier is not None:
            await self.barrier.settled()

    async def find(self, external_ids: Sequence[str]) -> list[StoredRef]:
        await self._wait()
        wanted = sorted(set(external_ids))
        found: list[StoredRef] = []
        async with self.factory() as session:
            for start in range(0, len(wanted), FIND_CHUNK):
                query = _refs().where(
                    FunnelEvent.source_type == self.source_type,
                    FunnelEvent.external_id.in_(wanted[start : start + FIND_CHUNK]),
                )
                found.extend(_as_refs((await session.execute(query)).all()))
        return found

    async def scan(self, prefix: str, *, after: int, limit: int) -> list[StoredRef]:
        await self._wait()
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            _refs()
            .where(
                FunnelEvent.source_id == self.source_id,
                FunnelEvent.source_type == self.source_type,
                FunnelEvent.external_id.like(f"{escaped}%", escape="\\"),
                FunnelEvent.id > after,
            )
            .order_by(FunnelEvent.id)
            .limit(limit)
        )
        async with self.factory() as session:
            return _as_refs((await session.execute(query)).all())
