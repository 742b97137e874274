"""Queries of the privacy tables and the deletes of an erasure."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import (
    AttributionCredit,
    FunnelConversion,
    FunnelEvent,
    Lead,
    PrivacyHashKey,
    PrivacyTombstone,
)
from signup_sync.db.types import utcnow

KEY_ROW_ID = 1
# PostgreSQL advisory lock between erasures (exclusive) and ingestion (shared): an ingest
# that checked the tombstones cannot then re-create a person erased meanwhile. (SQLite has
# one writer at a time: a transaction that read before an erasure committed cannot write.)
ERASURE_LOCK_KEY = 0x5052_4956


async def lock_for_ingestion(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": ERASURE_LOCK_KEY}
        )


async def lock_for_ingestion_and_read_key(session: AsyncSession) -> KeyRow | None:
    """``lock_for_ingestion`` then ``key_row``, in one statement on PostgreSQL (migration
    0008's function: its read sees a key created by the erasure the lock waited for)."""
    if session.get_bind().dialect.name != "postgresql":
        return await key_row(session)
    row = (
        await session.execute(
            text("SELECT secret, fingerprint FROM signup_sync_ingestion_guard(:k)"),
            {"k": ERASURE_LOCK_KEY},
        )
    ).first()
    return None if row is None else KeyRow(secret=row.secret, fingerprint=row.fingerprint)


async def lock_for_erasure(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ERASURE_LOCK_KEY})


async def checkpoint(session: AsyncSession) -> bool:
    """SQLite: copy the WAL into the database file and truncate it, so pages an erasure
    overwrote leave no older copy behind in the WAL. True when complete (or not SQLite)."""
    if session.get_bind().dialect.name != "sqlite":
        return True
    row = (await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).first()
    return row is None or int(row[0]) == 0


@dataclass(frozen=True, slots=True)
class KeyRow:
    secret: str | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class LeadIdentity:
    id: int
    email: str | None
    phone_e164: str | None
    phone: str | None = None  # as a source wrote it (the API keeps no E.164 form)


async def key_row(session: AsyncSession) -> KeyRow | None:
    row = (
        await session.execute(
            select(PrivacyHashKey.secret, PrivacyHashKey.fingerprint).where(
                PrivacyHashKey.id == KEY_ROW_ID
            )
        )
    ).first()
    return None if row is None else KeyRow(secret=row.secret, fingerprint=row.fingerprint)


async def insert_key(session: AsyncSession, *, secret: str | None, fingerprint: str) -> None:
    values = {
        "id": KEY_ROW_ID,
        "secret": secret,
        "fingerprint": fingerprint,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(PrivacyHashKey).values(values).on_conflict_do_nothing(index_elements=["id"])
    )


async def tombstoned(session: AsyncSession, hashes: Collection[str]) -> set[str]:
    """Which of these identifier hashes are tombstones (one indexed lookup)."""
    if not hashes:
        return set()
    rows = await session.execute(
        select(PrivacyTombstone.identifier_hash).where(
            PrivacyTombstone.identifier_hash.in_(sorted(hashes))
        )
    )
    return set(rows.scalars())


async def add_tombstones(session: AsyncSession, hashes: dict[str, str]) -> int:
    """Store ``{hash: kind}`` not stored yet; returns how many were new."""
    known = await tombstoned(session, hashes)
    new = {h: k for h, k in hashes.items() if h not in known}
    if new:
        now = utcnow()
        session.add_all(
            PrivacyTombstone(kind=kind, identifier_hash=h, created_at=now)
            for h, kind in new.items()
        )
        await session.flush()
    return len(new)


async def find_leads(
    session: AsyncSession, *, emails: Sequence[str], phones: Sequence[str], ids: Sequence[int]
) -> list[LeadIdentity]:
    clauses = []
    if emails:
        clauses.append(Lead.email.in_(emails))
    if phones:
        clauses.append(Lead.phone_e164.in_(phones))
    if ids:
        clauses.append(Lead.id.in_(ids))
    if not clauses:
        return []
    rows = await session.execute(
        select(Lead.id, Lead.email, Lead.phone_e164, Lead.phone)
        .where(or_(*clauses))
        .order_by(Lead.id)
    )
    return [
        LeadIdentity(id=r.id, email=r.email, phone_e164=r.phone_e164, phone=r.phone) for r in rows
    ]


async def _count(
    session: AsyncSession, model: type[FunnelEvent | FunnelConversion], ids: list[int]
) -> int:
    query = select(func.count()).select_from(model).where(model.lead_id.in_(ids))
    return int((await session.execute(query)).scalar_one())


async def delete_leads(session: AsyncSession, ids: Sequence[int]) -> tuple[int, int, int]:
    """Delete these leads with their events, conversions and credits: (leads, events, convs)."""
    if not ids:
        return 0, 0, 0
    lead_ids = list(ids)
    events = await _count(session, FunnelEvent, lead_ids)
    conversions = await _count(session, FunnelConversion, lead_ids)
    # Children first, explicitly: the counts above must match what goes, cascade or not.
    for model in (AttributionCredit, FunnelConversion, FunnelEvent):
        await session.execute(delete(model).where(model.lead_id.in_(lead_ids)))
    result = await session.execute(delete(Lead).where(Lead.id.in_(lead_ids)))
    return int(getattr(result, "rowcount", 0) or 0), events, conversions
