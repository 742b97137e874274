"""Queries of the tracking API: received messages and the identity map."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import TrackingIdentity, TrackingMessage
from signup_sync.tracking.identity import IdentityGraph, Key

MESSAGES = cast(Table, TrackingMessage.__table__)
IDENTITIES = cast(Table, TrackingIdentity.__table__)


async def existing_message_ids(
    session: AsyncSession, write_key_id: str, message_ids: Sequence[str]
) -> set[str]:
    if not message_ids:
        return set()
    rows = await session.execute(
        select(TrackingMessage.message_id).where(
            TrackingMessage.write_key_id == write_key_id,
            TrackingMessage.message_id.in_(sorted(set(message_ids))),
        )
    )
    return set(rows.scalars())


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """A concurrent request storing the same messageId makes this raise IntegrityError;
    the unit of work re-runs and then sees it as a duplicate."""
    if rows:
        await session.execute(MESSAGES.insert(), list(rows))


@dataclass(frozen=True, slots=True)
class PendingMessage:
    id: int
    message_id: str
    event_type: str
    source_type: str
    anonymous_id: str | None
    user_id: str | None
    occurred_at: datetime
    payload: dict[str, Any]


async def pending_messages(
    session: AsyncSession, anonymous_ids: Sequence[str], user_ids: Sequence[str]
) -> list[PendingMessage]:
    """Stored touches waiting for an email, of any of these ids, oldest first."""
    clauses: list[ColumnElement[bool]] = []
    if anonymous_ids:
        clauses.append(TrackingMessage.anonymous_id.in_(sorted(set(anonymous_ids))))
    if user_ids:
        clauses.append(TrackingMessage.user_id.in_(sorted(set(user_ids))))
    if not clauses:
        return []
    rows = await session.execute(
        select(
            TrackingMessage.id,
            TrackingMessage.message_id,
            TrackingMessage.event_type,
            TrackingMessage.source_type,
            TrackingMessage.anonymous_id,
            TrackingMessage.user_id,
            TrackingMessage.occurred_at,
            TrackingMessage.payload,
        )
        .where(TrackingMessage.status == "pending", or_(*clauses))
        .order_by(TrackingMessage.occurred_at, TrackingMessage.id)
    )
    return [PendingMessage(**row._mapping) for row in rows.all()]


async def mark_touchpoints(session: AsyncSession, attached: Sequence[tuple[int, int, int]]) -> None:
    """Pending rows (id, lead id, event id) that became funnel events."""
    if not attached:
        return
    stmt = (
        MESSAGES.update()
        .where(MESSAGES.c.id == bindparam("row_id"))
        .values(status="touchpoint", lead_id=bindparam("new_lead"), event_id=bindparam("new_event"))
    )
    await session.execute(
        stmt,
        [{"row_id": r, "new_lead": lead, "new_event": event} for r, lead, event in attached],
    )


async def delete_messages(session: AsyncSession, row_ids: Sequence[int]) -> None:
    """Stored rows whose person turned out to be erased."""
    if row_ids:
        await session.execute(MESSAGES.delete().where(MESSAGES.c.id.in_(list(row_ids))))


def _keys_clause(keys: Sequence[Key]) -> ColumnElement[bool]:
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    return or_(
        *(
            and_(TrackingIdentity.kind == kind, TrackingIdentity.value.in_(values))
            for kind, values in sorted(by_kind.items())
        )
    )


def _lock_key(key: Key) -> int:
    """A stable signed 64-bit advisory lock key of one id (any process, any replica)."""
    digest = hashlib.blake2b(f"tracking:{key[0]}:{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_identities(session: AsyncSession, keys: set[Key]) -> None:
    """Serialise requests about the same ids until commit (PostgreSQL; SQLite has one
    writer): these ids and the users they link to, one advisory lock each, in key order.

    A page view and an identify of one anonymousId at the same instant otherwise each read
    the map before the other wrote: the view stays pending with no email, the identify finds
    no pending view to attach. Under the lock the second request's reads (new statements,
    new snapshots) see what the first committed."""
    if session.get_bind().dialect.name != "postgresql" or not keys:
        return
    linked = await session.execute(
        select(TrackingIdentity.linked_user_id).where(
            _keys_clause(sorted(keys)), TrackingIdentity.linked_user_id.is_not(None)
        )
    )
    everything = keys | {("user", user) for user in linked.scalars() if user}
    await session.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
        {"keys": sorted({_lock_key(k) for k in everything})},
    )


async def load_identities(session: AsyncSession, graph: IdentityGraph, keys: set[Key]) -> None:
    """Load these ids and every id their links lead to (bounded by the chain length cap)."""
    wanted = set(keys)
    for _ in range(8):
        todo = graph.to_load(wanted)
        if not todo:
            return
        rows = await session.execute(
            select(
                TrackingIdentity.kind,
                TrackingIdentity.value,
                TrackingIdentity.email,
                TrackingIdentity.linked_user_id,
            ).where(_keys_clause(todo))
        )
        graph.loaded.update(todo)
        for kind, value, email, linked in rows.all():
            graph.add_loaded((kind, value), email, linked)
        wanted = graph.link_targets()


async def linked_to(session: AsyncSession, user_ids: Sequence[str]) -> list[Key]:
    """Ids whose link points at any of these user ids."""
    if not user_ids:
        return []
    rows = await session.execute(
        select(TrackingIdentity.kind, TrackingIdentity.value).where(
            TrackingIdentity.linked_user_id.in_(sorted(set(user_ids)))
        )
    )
    return [(kind, value) for kind, value in rows.all()]


async def save_identities(session: AsyncSession, graph: IdentityGraph, now: datetime) -> None:
    """Insert or update the ids this request changed, in one statement."""
    rows = [
        {
            "kind": kind,
            "value": value,
            "email": node.email,
            "linked_user_id": node.linked_user,
            "created_at": now,
            "updated_at": now,
        }
        for (kind, value), node in graph.dirty_nodes()
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(TrackingIdentity).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "value"],
        set_={
            "email": stmt.excluded.email,
            "linked_user_id": stmt.excluded.linked_user_id,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await session.execute(stmt)


async def count_by(session: AsyncSession, column: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).group_by(column))
    return {str(key): int(count) for key, count in rows.all()}


async def unmapped_events(session: AsyncSession, limit: int) -> list[tuple[str, int, datetime]]:
    rows = await session.execute(
        select(
            TrackingMessage.event_name,
            func.count().label("n"),
            func.max(TrackingMessage.received_at),
        )
        .where(TrackingMessage.status == "unmapped")
        .group_by(TrackingMessage.event_name)
        .order_by(func.count().desc(), TrackingMessage.event_name)
        .limit(limit)
    )
    return [(str(name), int(n), last) for name, n, last in rows.all()]


async def identity_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(TrackingIdentity)) or 0)
