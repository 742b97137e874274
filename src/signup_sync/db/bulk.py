"""Bulk write paths, one function each, with the per-dialect detail kept inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db import pg_ingest
from signup_sync.db.models import FunnelEvent, Lead

LEAD_KEY_COLUMNS = {"email": Lead.email, "phone": Lead.phone_e164}


@dataclass(frozen=True, slots=True)
class LeadRef:
    id: int
    created: bool


def _later(new: Any, old: Any) -> ColumnElement[Any]:
    return case((new > old, new), else_=old)


def _earlier_nullable(new: Any, old: Any) -> ColumnElement[Any]:
    # LEAST ignores NULL on PostgreSQL but SQLite's min() returns NULL: spell it out.
    return case((old.is_(None), new), (new.is_(None), old), (new < old, new), else_=old)


def _lead_upsert_set(excluded: Any) -> dict[str, Any]:
    """Merge a folded lead row (``events.fold.lead_row``) into the stored one: the fold of
    the union of both sides' records. Stage > 0 says a side has counting records; a side
    with them wins first touch and times over one without (a refunded order dated earlier
    does not take first touch), otherwise the earlier first and later last time win (equal
    times keep the stored row: arrival order)."""
    t = Lead.__table__.c
    new_counts, old_counts = excluded.stage > 0, t.stage > 0
    only_new = and_(new_counts, ~old_counts)
    only_old = and_(old_counts, ~new_counts)
    earlier = or_(only_new, and_(~only_old, excluded.first_seen_at < t.first_seen_at))
    touch = {
        name: case((earlier, getattr(excluded, name)), else_=getattr(t, name))
        for name in (
            "first_touch_source_type",
            "first_touch_utm_source",
            "first_touch_utm_medium",
            "first_touch_utm_campaign",
            "first_touch_channel",
            "first_touch_item",
            "first_touch_item_name",
        )
    }
    stage_times = {
        f"stage_{n}_at": _earlier_nullable(
            getattr(excluded, f"stage_{n}_at"), getattr(t, f"stage_{n}_at")
        )
        for n in range(1, 7)
    }
    last_seen = case(
        (only_new, excluded.last_seen_at),
        (only_old, t.last_seen_at),
        else_=_later(excluded.last_seen_at, t.last_seen_at),
    )
    return {
        "first_name": case((t.first_name.is_(None), excluded.first_name), else_=t.first_name),
        "last_name": case((t.last_name.is_(None), excluded.last_name), else_=t.last_name),
        "company": case((t.company.is_(None), excluded.company), else_=t.company),
        "phone": case((t.phone.is_(None), excluded.phone), else_=t.phone),
        # A lead keeps its number; one without gets the incoming one (the caller has checked
        # that no other lead holds it, see leads.stitching).
        "phone_e164": case((t.phone_e164.is_(None), excluded.phone_e164), else_=t.phone_e164),
        "stage": _later(excluded.stage, t.stage),
        "first_seen_at": case((earlier, excluded.first_seen_at), else_=t.first_seen_at),
        "last_seen_at": last_seen,
        "converted_at": _earlier_nullable(excluded.converted_at, t.converted_at),
        "updated_at": excluded.updated_at,
        **touch,
        **stage_times,
    }


_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert_statement(dialect: str, key: str) -> Any:
    """The lead upsert for one dialect and key, built once: a Core statement that is
    executed with a list of rows (SQLAlchemy batches them as multi-row VALUES with
    RETURNING), so its SQL is compiled once per process instead of once per call."""
    cached = _UPSERTS.get((dialect, key))
    if cached is not None:
        return cached
    table = cast(Table, Lead.__table__)
    key_column = table.c[LEAD_KEY_COLUMNS[key].key]
    stmt: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    # xmax is 0 only on a freshly inserted tuple: the standard "was it an insert" test.
    created = literal_column("xmax") == 0 if dialect == "postgresql" else literal_column("0")
    stmt = stmt.on_conflict_do_update(
        index_elements=[key_column.key], set_=_lead_upsert_set(stmt.excluded)
    ).returning(table.c.id, key_column, created.label("created"))
    _UPSERTS[(dialect, key)] = stmt
    return stmt


async def upsert_leads(
    session: AsyncSession, key: str, rows: Sequence[dict[str, Any]]
) -> dict[str, LeadRef]:
    """Insert or merge leads keyed by ``key`` (``email`` or ``phone``).

    Returns each key value's lead id and whether this statement created it.
    """
    if not rows:
        return {}
    key_column = LEAD_KEY_COLUMNS[key]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        merged = await pg_ingest.upsert_leads(session, key, rows)
        return {value: LeadRef(id=lead_id, created=created) for lead_id, value, created in merged}
    existing: set[str] | None = None
    if dialect != "postgresql":
        # SQLite writes are serialised by the single connection, so a pre-read is exact.
        values = [row[key_column.key] for row in rows]
        found = await session.execute(select(key_column).where(key_column.in_(values)))
        existing = {value for value in found.scalars() if value is not None}
    result = await session.execute(_upsert_statement(dialect, key), list(rows))
    refs: dict[str, LeadRef] = {}
    for lead_id, key_value, created in result.all():
        was_created = bool(created) if existing is None else key_value not in existing
        refs[key_value] = LeadRef(id=lead_id, created=was_created)
    return refs


async def insert_events(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> list[tuple[int, Any]]:
    """Insert events in one round trip; ids and created_at come back in input order.

    A unique-key collision (a concurrent writer stored the same event first) raises
    IntegrityError: the caller's unit of work retries and then sees a duplicate.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return await pg_ingest.insert_events(session, rows)
    # Core insert on the table: rows use column names (``metadata``), not attribute names.
    stmt = (
        cast(Table, FunnelEvent.__table__)
        .insert()
        .returning(FunnelEvent.id, FunnelEvent.created_at, sort_by_parameter_order=True)
    )
    result = await session.execute(stmt, list(rows))
    return [(row[0], row[1]) for row in result.all()]


def can_store_together(session: AsyncSession, lead_rows: Sequence[dict[str, Any]]) -> bool:
    """Whether ``store_email_leads_with_events`` applies: PostgreSQL, and email leads that
    claim no phone (phone claims need their own statements, see leads.stitching)."""
    return session.get_bind().dialect.name == "postgresql" and not any(
        row.get("phone_e164") for row in lead_rows
    )


async def store_email_leads_with_events(
    session: AsyncSession,
    lead_rows: Sequence[dict[str, Any]],
    event_rows: Sequence[dict[str, Any]],
    lead_emails: Sequence[str],
) -> tuple[dict[str, LeadRef], list[tuple[int, Any]]]:
    """``upsert_leads("email", lead_rows)`` then ``insert_events`` in one round trip (see
    ``can_store_together``); each event's ``lead_id`` comes from ``lead_emails[i]``'s lead."""
    leads, inserted = await pg_ingest.upsert_email_leads_with_events(
        session, lead_rows, event_rows, lead_emails
    )
    return {email: LeadRef(id=lead_id, created=new) for lead_id, email, new in leads}, inserted


def existing_events_clause(
    external_keys: Sequence[tuple[str, str, str]], idempotency_keys: Sequence[str]
) -> ColumnElement[bool] | None:
    """WHERE clause that finds already-stored events by external key or Idempotency-Key.

    Matches on (source_type IN ..., external_id IN ...), which both dialects answer with
    an index seek on the unique key (a row-value IN makes SQLite scan the whole index).
    It may return a few extra rows (other event types of the same ids): callers match the
    exact triple.
    """
    clauses: list[ColumnElement[bool]] = []
    if external_keys:
        source_types = sorted({k[0] for k in external_keys})
        external_ids = sorted({k[1] for k in external_keys})
        event_types = sorted({k[2] for k in external_keys})
        clauses.append(
            and_(
                FunnelEvent.source_type.in_(source_types),
                FunnelEvent.external_id.in_(external_ids),
                FunnelEvent.event_type.in_(event_types),
            )
        )
    if idempotency_keys:
        clauses.append(FunnelEvent.idempotency_key.in_(list(idempotency_keys)))
    if not clauses:
        return None
    return or_(*clauses)


async def update_event_statuses(session: AsyncSession, changes: dict[int, str]) -> None:
    """Set new statuses on stored events, one statement per distinct status."""
    by_status: dict[str, list[int]] = {}
    for event_id, status in changes.items():
        by_status.setdefault(status, []).append(event_id)
    for status, ids in by_status.items():
        await session.execute(
            update(FunnelEvent).where(FunnelEvent.id.in_(ids)).values(status=status)
        )


@dataclass(frozen=True, slots=True)
class LeadKeys:
    id: int
    email: str | None
    phone_e164: str | None


async def find_leads_by_keys(
    session: AsyncSession, emails: Sequence[str], phones: Sequence[str]
) -> list[LeadKeys]:
    """Leads holding any of these emails or E.164 phones (one statement)."""
    clauses: list[ColumnElement[bool]] = []
    if emails:
        clauses.append(Lead.email.in_(list(emails)))
    if phones:
        clauses.append(Lead.phone_e164.in_(list(phones)))
    if not clauses:
        return []
    rows = await session.execute(select(Lead.id, Lead.email, Lead.phone_e164).where(or_(*clauses)))
    return [LeadKeys(id=r.id, email=r.email, phone_e164=r.phone_e164) for r in rows.all()]


async def attach_emails(session: AsyncSession, emails_by_lead: dict[int, str]) -> None:
    """Give phone-only leads their email (only where they still have none)."""
    if not emails_by_lead:
        return
    table = cast(Table, Lead.__table__)
    stmt = (
        table.update()
        .where(table.c.id == bindparam("lead_id"), table.c.email.is_(None))
        .values(email=bindparam("new_email"))
    )
    await session.execute(stmt, [{"lead_id": k, "new_email": v} for k, v in emails_by_lead.items()])
