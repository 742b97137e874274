"""The parts of an erasure beyond the lead: tracking ids and messages, webhook deliveries,
and every column ``privacy.registry`` marks as searched.

Order matters: the person's tracking rows and deliveries are found through the lead (its
id, its events' external ids) before the lead goes; the registry-driven search runs last,
over what is left, and deletes the rows that are the person's or scrubs the identifier
out of rows that are someone else's (another lead's event metadata, a sync log line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    LargeBinary,
    String,
    Table,
    cast,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import (
    Base,
    FunnelEvent,
    TrackingIdentity,
    TrackingMessage,
    WebhookDelivery,
)
from signup_sync.privacy.matching import LIKE_ESCAPE, Needles
from signup_sync.privacy.registry import searched_columns

MAX_LINK_HOPS = 8  # as tracking.identity: link chains are short
_CHUNK = 200


@dataclass(slots=True)
class SweepCounts:
    tracking_messages: int = 0
    tracking_identities: int = 0
    webhook_deliveries: int = 0
    other_rows: int = 0
    values_scrubbed: int = 0


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


async def person_tracking_rows(
    session: AsyncSession, needles: Needles, lead_ids: Sequence[int]
) -> SweepCounts:
    """Delete the tracking ids of the person (their email, or linked to an id that has it)
    and every message of those ids or of their leads."""
    counts = SweepCounts()
    found = await _identities_of(session, needles)
    anon = sorted(v for k, v in found if k == "anon")
    users = sorted(v for k, v in found if k == "user")
    clauses: list[ColumnElement[bool]] = []
    if lead_ids:
        clauses.append(TrackingMessage.lead_id.in_(list(lead_ids)))
    for part in _chunks(anon):
        clauses.append(TrackingMessage.anonymous_id.in_(part))
    for part in _chunks(users):
        clauses.append(TrackingMessage.user_id.in_(part))
    if clauses:
        result = await session.execute(delete(TrackingMessage).where(or_(*clauses)))
        counts.tracking_messages = _rowcount(result)
    for part in _chunks(sorted(found)):
        result = await session.execute(
            delete(TrackingIdentity).where(
                tuple_(TrackingIdentity.kind, TrackingIdentity.value).in_(list(part))
            )
        )
        counts.tracking_identities += _rowcount(result)
    return counts


async def _identities_of(session: AsyncSession, needles: Needles) -> set[tuple[str, str]]:
    if not needles.emails:
        return set()
    emails = list(needles.emails)
    rows = await session.execute(
        select(TrackingIdentity.kind, TrackingIdentity.value).where(
            or_(
                func.lower(TrackingIdentity.email).in_(emails),
                func.lower(TrackingIdentity.value).in_(emails),
            )
        )
    )
    found: set[tuple[str, str]] = {(k, v) for k, v in rows.all()}
    frontier = {v for k, v in found if k == "user"}
    for _ in range(MAX_LINK_HOPS):
        if not frontier:
            break
        linked = await session.execute(
            select(TrackingIdentity.kind, TrackingIdentity.value).where(
                TrackingIdentity.linked_user_id.in_(sorted(frontier))
            )
        )
        new = {(k, v) for k, v in linked.all()} - found
        found |= new
        frontier = {v for k, v in new if k == "user"}
    return found


async def deliveries_of_events(session: AsyncSession, lead_ids: Sequence[int]) -> int:
    """Delete the webhook deliveries whose processing stored these leads' events (an
    EasyAppointments or Eventbrite delivery names the person only by the ids it led to)."""
    if not lead_ids:
        return 0
    rows = await session.execute(
        select(FunnelEvent.source_id, FunnelEvent.external_id).where(
            FunnelEvent.lead_id.in_(list(lead_ids)),
            FunnelEvent.external_id.is_not(None),
            FunnelEvent.source_id.is_not(None),
        )
    )
    by_source: dict[int, set[str]] = {}
    for source_id, external_id in rows.all():
        if source_id is not None:
            by_source.setdefault(int(source_id), set()).add(str(external_id))
    doomed: set[int] = set()
    text = _as_text(session, WebhookDelivery.result)
    for source_id, external_ids in by_source.items():
        for part in _chunks(sorted(external_ids)):
            found = await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.result).where(
                    WebhookDelivery.source_id == source_id,
                    or_(*(text.contains(x, autoescape=True) for x in part)),
                )
            )
            for delivery_id, result in found.all():
                named = (result or {}).get("external_ids") or []
                if external_ids.intersection(map(str, named)):
                    doomed.add(int(delivery_id))
    for part in _chunks(sorted(doomed)):
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(list(part))))
    return len(doomed)


def _as_text(session: AsyncSession, column: Any) -> ColumnElement[str]:
    """The column as searchable text on this dialect."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if isinstance(column.type, LargeBinary):
        return func.encode(column, "escape") if postgres else cast(column, String)
    if isinstance(column.type, JSON):
        return cast(column, String)
    return column  # type: ignore[no-any-return]


_COUNTED = {
    "funnel_webhook_inbox": "webhook_deliveries",
    "funnel_tracking_messages": "tracking_messages",
    "funnel_tracking_identities": "tracking_identities",
}


@dataclass(frozen=True, slots=True)
class Carrier:
    table: str
    row_id: int


async def find_carriers(session: AsyncSession, needles: Needles) -> list[Carrier]:
    """Rows of the searched columns (``privacy.registry``) that carry one of the identifiers.

    Read-only, one scan per table (a LIKE pre-filter, then an exact check of the candidate
    rows here): the erasure runs it before taking its lock, so ingestion is not held up by
    full-table scans, and ``apply_to_carriers`` writes after the lock.
    """
    found: list[Carrier] = []
    if not needles:
        return found
    patterns = needles.like_patterns
    for table_name, columns in searched_columns().items():
        table: Table = Base.metadata.tables[table_name]
        texts = [func.lower(_as_text(session, table.c[name])) for name in columns]
        hits = await session.execute(
            select(table.c.id, *(table.c[name] for name in columns)).where(
                or_(*(t.like(p, escape=LIKE_ESCAPE) for t in texts for p in patterns))
            )
        )
        found += [
            Carrier(table_name, int(row_id))
            for row_id, *values in hits.all()
            if any(needles.in_stored(v) for v in values)
        ]
    return found


async def apply_to_carriers(
    session: AsyncSession, needles: Needles, carriers: Sequence[Carrier]
) -> SweepCounts:
    """Delete the carrier rows that are the person's, scrub the identifiers out of the rest
    (re-read by id: what the rows hold now is what is checked)."""
    counts = SweepCounts()
    searched = searched_columns()
    for carrier in carriers:
        columns = searched[carrier.table]
        table: Table = Base.metadata.tables[carrier.table]
        row = (
            await session.execute(
                select(*(table.c[name] for name in columns)).where(table.c.id == carrier.row_id)
            )
        ).first()
        if row is None:
            continue  # gone with the lead, or deleted meanwhile
        carried = {
            name: value
            for name, value in zip(columns, row, strict=True)
            if needles.in_stored(value)
        }
        if not carried:
            continue
        if any(columns[name] == "delete_row" for name in carried):
            result = await session.execute(delete(table).where(table.c.id == carrier.row_id))
            kind = _COUNTED.get(carrier.table, "other_rows")
            setattr(counts, kind, getattr(counts, kind) + _rowcount(result))
            continue
        cleaned = {
            name: needles.scrub_text(v) if isinstance(v, str) else needles.scrub_value(v)
            for name, v in carried.items()
        }
        await session.execute(update(table).where(table.c.id == carrier.row_id).values(cleaned))
        counts.values_scrubbed += len(cleaned)
    return counts
