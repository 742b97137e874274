"""Queries over the webhook inbox (``funnel_webhook_inbox``) and the sources it belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import FunnelSource, WebhookDelivery

# A declarative class's table is a Table; mypy only knows it as a FromClause.
T = cast(Table, WebhookDelivery.__table__)
RETRYABLE = ("pending", "failed")
REPLAYABLE = ("failed", "parked", "done")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker holds until ``claimed_until``; ``attempts`` is the claim's token."""

    id: int
    source_type: str
    source_id: int | None
    body: bytes
    headers: dict[str, Any]
    attempts: int


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def active_sources(
    session: AsyncSession, source_type: str, source_id: int | None
) -> Sequence[FunnelSource]:
    query = select(FunnelSource).where(
        FunnelSource.source_type == source_type, FunnelSource.is_active.is_(True)
    )
    if source_id is not None:
        query = query.where(FunnelSource.id == source_id)
    return (await session.execute(query.order_by(FunnelSource.id).limit(2))).scalars().all()


async def get_source(session: AsyncSession, source_id: int) -> FunnelSource | None:
    return await session.get(FunnelSource, source_id)


async def insert_delivery(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert unless the (source, dedupe key) is stored already; the new id or None."""
    make = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    statement = (
        make(T)
        .values(values)
        .on_conflict_do_nothing(index_elements=["source_type", "source_id", "dedupe_key"])
        .returning(T.c.id)
    )
    found = (await session.execute(statement)).scalar_one_or_none()
    return int(found) if found is not None else None


async def find_delivery_id(
    session: AsyncSession, source_type: str, source_id: int, dedupe_key: str
) -> int | None:
    found = await session.execute(
        select(T.c.id).where(
            T.c.source_type == source_type,
            T.c.source_id == source_id,
            T.c.dedupe_key == dedupe_key,
        )
    )
    value = found.scalar_one_or_none()
    return int(value) if value is not None else None


def _due(now: datetime) -> Any:
    return or_(
        and_(T.c.status.in_(RETRYABLE), T.c.next_attempt_at <= now),
        # A worker that died mid-delivery leaves it "processing"; its claim expires.
        and_(T.c.status == "processing", T.c.claimed_until < now),
    )


async def claim_due(
    session: AsyncSession, *, now: datetime, ttl_seconds: float, limit: int
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries in one statement and count the attempt.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets several workers claim side by side.
    SQLite: the single UPDATE is atomic under its write lock, and the WHERE re-checks
    that each row is still due, so two processes never claim the same row.
    """
    pick = select(T.c.id).where(_due(now)).order_by(T.c.next_attempt_at, T.c.id).limit(limit)
    if _dialect(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    statement = (
        update(T)
        .where(T.c.id.in_(pick.scalar_subquery()), _due(now))
        .values(
            status="processing",
            claimed_until=now + timedelta(seconds=ttl_seconds),
            attempts=T.c.attempts + 1,
        )
        .returning(T.c.id, T.c.source_type, T.c.source_id, T.c.body, T.c.headers, T.c.attempts)
    )
    rows = (await session.execute(statement)).all()
    claimed = [
        Claimed(
            id=int(r.id),
            source_type=r.source_type,
            source_id=r.source_id,
            body=bytes(r.body),
            headers=dict(r.headers or {}),
            attempts=int(r.attempts),
        )
        for r in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


async def settle(session: AsyncSession, claim: Claimed, values: dict[str, Any]) -> bool:
    """Record a claimed delivery's outcome; False if the claim was lost (taken over)."""
    result = await session.execute(
        update(T)
        .where(T.c.id == claim.id, T.c.status == "processing", T.c.attempts == claim.attempts)
        .values({**values, "claimed_until": None})
    )
    return bool(getattr(result, "rowcount", 0))


async def set_result(session: AsyncSession, delivery_id: int, result: dict[str, Any]) -> None:
    await session.execute(update(T).where(T.c.id == delivery_id).values(result=result))


async def delete_delivery(session: AsyncSession, delivery_id: int) -> None:
    await session.execute(delete(T).where(T.c.id == delivery_id))


async def get_delivery(session: AsyncSession, delivery_id: int) -> WebhookDelivery | None:
    found = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .execution_options(populate_existing=True)
    )
    return found.scalar_one_or_none()


async def list_deliveries(
    session: AsyncSession,
    *,
    status: str | None,
    source_type: str | None,
    before_id: int | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if source_type is not None:
        query = query.where(WebhookDelivery.source_type == source_type)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    return (await session.execute(query)).scalars().all()


async def requeue(session: AsyncSession, delivery_id: int, *, now: datetime) -> bool:
    """Make a finished or failed delivery pending again, with a fresh attempt budget."""
    result = await session.execute(
        update(T)
        .where(T.c.id == delivery_id, T.c.status.in_(REPLAYABLE))
        .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None)
    )
    return bool(getattr(result, "rowcount", 0))
