"""Statements of the refold (``events.refold``): lock leads, read their events, write rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import FunnelEvent, Lead

# The event columns the fold reads (events.fold.lead_row's inputs other than names).
FOLD_COLUMNS = (
    "lead_id", "source_type", "event_type", "status", "occurred_at", "utm_source",
    "utm_medium", "utm_campaign", "referrer", "landing_page", "gclid", "fbclid", "msclkid",
)  # fmt: skip


async def lock_leads(session: AsyncSession, lead_ids: Sequence[int]) -> None:
    """Row-lock these leads until commit, in id order (PostgreSQL; SQLite has one writer).

    Every writer that adds an event to a lead holds its row lock (the upsert's ON CONFLICT
    takes it), so a refold that holds it reads every event committed before it and no
    writer can merge into the row between the read and the write."""
    if session.get_bind().dialect.name != "postgresql" or not lead_ids:
        return
    await session.execute(
        select(Lead.id)
        .where(Lead.id.in_(sorted(set(lead_ids))))
        .order_by(Lead.id)
        .with_for_update()
    )


async def events_of(session: AsyncSession, lead_ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The fold's columns of every event of these leads, in arrival (id) order."""
    columns = [getattr(FunnelEvent, name) for name in FOLD_COLUMNS]
    query = (
        select(*columns, FunnelEvent.event_metadata)
        .where(FunnelEvent.lead_id.in_(sorted(set(lead_ids))))
        .order_by(FunnelEvent.id)
    )
    return [tuple(row) for row in (await session.execute(query)).all()]


async def write_leads(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Set the given columns of each lead (``lead_id`` names the row); one statement."""
    if not rows:
        return
    table = cast(Table, Lead.__table__)
    names = [n for n in rows[0] if n != "lead_id"]
    stmt = (
        table.update()
        .where(table.c.id == bindparam("lead_id"))
        .values({n: bindparam(f"v_{n}") for n in names})
    )
    params = [{"lead_id": r["lead_id"], **{f"v_{n}": r[n] for n in names}} for r in rows]
    await session.execute(stmt, params)
