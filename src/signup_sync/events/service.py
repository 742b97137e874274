"""Ingestion: turn validated event records into leads and events, idempotently, in bulk."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.bulk import (
    LeadRef,
    can_store_together,
    insert_events,
    store_email_leads_with_events,
    update_event_statuses,
    upsert_leads,
)
from signup_sync.db.pg_ingest import ingest_one
from signup_sync.db.types import utcnow
from signup_sync.events.fold import channel_of_record, lead_row
from signup_sync.events.records import EventRecord
from signup_sync.events.refold import refold
from signup_sync.events.repository import StoredEvent, find_existing
from signup_sync.leads.stitching import claim_phones
from signup_sync.metrics import count_on_commit
from signup_sync.privacy.keys import guard_ingestion
from signup_sync.privacy.tombstones import erased_indices

# Rows per statement: keeps SQLite under its bound-parameter limit and statements reasonable.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What ingestion did with one record.

    ``erased``: the record's email or phone belongs to a person erased on request
    (``signup_sync.privacy``); nothing was written, and ``event_id``/``lead_id`` are 0.
    """

    status: Literal["accepted", "duplicate", "erased"]
    event_id: int
    lead_id: int
    lead_created: bool
    occurred_at: datetime
    created_at: datetime
    source_type: str
    event_type: str
    stage: int
    email: str | None
    # A duplicate whose status changed (e.g. an attendee who cancelled) was updated in place.
    changed: bool = False


def _duplicate(stored: StoredEvent, *, changed: bool = False) -> IngestOutcome:
    return IngestOutcome(
        status="duplicate",
        event_id=stored.id,
        lead_id=stored.lead_id,
        lead_created=False,
        occurred_at=stored.occurred_at,
        created_at=stored.created_at,
        source_type=stored.source_type,
        event_type=stored.event_type,
        stage=stored.stage,
        email=stored.email,
        changed=changed,
    )


def _erased(record: EventRecord, now: datetime) -> IngestOutcome:
    return IngestOutcome(
        status="erased",
        event_id=0,
        lead_id=0,
        lead_created=False,
        occurred_at=record.occurred_at,
        created_at=now,
        source_type=record.source_type,
        event_type=record.event_type,
        stage=record.stage,
        email=None,
    )


def event_row(record: EventRecord, lead_id: int, now: datetime) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "source_id": record.source_id,
        "source_type": record.source_type,
        "event_type": record.event_type,
        "stage": record.stage,
        "status": record.status,
        "occurred_at": record.occurred_at,
        "external_id": record.external_id,
        "idempotency_key": record.idempotency_key,
        "utm_source": record.utm_source,
        "utm_medium": record.utm_medium,
        "utm_campaign": record.utm_campaign,
        "utm_term": record.utm_term,
        "utm_content": record.utm_content,
        "referrer": record.referrer,
        "landing_page": record.landing_page,
        "gclid": record.gclid,
        "fbclid": record.fbclid,
        "msclkid": record.msclkid,
        "metadata": record.metadata,
        "channel": channel_of_record(record),
        "created_at": now,
    }


Barrier = Callable[[], Awaitable[None]]


async def _no_wait() -> None:
    return None


async def ingest(
    session: AsyncSession,
    records: Sequence[EventRecord],
    *,
    before_writes: Barrier = _no_wait,
) -> list[IngestOutcome]:
    """Store new events and merge their leads; report stored ones as duplicates.

    A constant number of statements per call (per chunk of rows), whatever the table
    sizes: the erasure guard (once per call: a shared lock on PostgreSQL, the key until a
    first erasure), then per chunk one tombstone lookup, one event lookup, one lead upsert
    per key kind, one event insert. Records of an erased person are reported ``erased``
    and not written. Does not commit.

    ``before_writes`` is awaited before each chunk's first write (after its lookups): the
    sync engine uses it to let a page's lookups run while the previous page is still
    writing, and its writes only after that page's (see ``sync.runner``).
    """
    outcomes: list[IngestOutcome | None] = [None] * len(records)
    key = None
    if records:
        key = await guard_ingestion(session)  # an erasure in flight finishes first
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        erased = await erased_indices(session, key, chunk)
        kept = [i for i in range(len(chunk)) if i not in erased]
        for i in erased:
            outcomes[start + i] = _erased(chunk[i], utcnow())
        if len(chunk) == len(kept) == 1:
            await before_writes()
            one = await _ingest_one(session, chunk[0])
        else:
            one = None
        if one is not None:
            outcomes[start] = one
            continue
        stored = (
            await _ingest_chunk(session, [chunk[i] for i in kept], before_writes) if kept else []
        )
        for i, outcome in zip(kept, stored, strict=True):
            outcomes[start + i] = outcome
    done = [o for o in outcomes if o is not None]
    count_on_commit(session, done)
    return done


async def _ingest_one(session: AsyncSession, record: EventRecord) -> IngestOutcome | None:
    """One email-keyed event in one statement (PostgreSQL): the same outcome as a chunk of
    one, a round trip instead of two. None when the general path must run."""
    if record.lead_key[0] != "email" or session.get_bind().dialect.name != "postgresql":
        return None
    now = utcnow()
    lead = lead_row([record], now)
    if lead["phone_e164"]:
        return None  # phone claims need their own statements (leads.stitching)
    row = event_row(record, 0, now)
    stored, created_lead, inserted = await ingest_one(
        session, record.external_key, record.idempotency_key, lead, row
    )
    if stored:
        found = [StoredEvent(*s) for s in stored]
        key = record.idempotency_key
        hit = next((s for s in found if key and s.idempotency_key == key), None) or next(
            (s for s in found if s.external_key == record.external_key), None
        )
        if hit is None:  # nothing was written: let the general path decide
            return None
        changed = hit.status != record.status
        if changed:
            await update_event_statuses(session, {hit.id: record.status})
            await refold(session, [hit.lead_id])
        return _duplicate(hit, changed=changed)
    assert created_lead is not None and inserted is not None
    return IngestOutcome(
        status="accepted",
        event_id=inserted[0],
        lead_id=created_lead[0],
        lead_created=created_lead[1],
        occurred_at=record.occurred_at,
        created_at=inserted[1],
        source_type=record.source_type,
        event_type=record.event_type,
        stage=record.stage,
        email=record.email,
    )


async def _ingest_chunk(
    session: AsyncSession, records: Sequence[EventRecord], before_writes: Barrier = _no_wait
) -> list[IngestOutcome]:
    now = utcnow()
    external = {k for r in records if (k := r.external_key) is not None}
    idem = {r.idempotency_key for r in records if r.idempotency_key}
    stored = await find_existing(session, sorted(external), sorted(idem))
    by_external = {(s.source_type, s.external_id, s.event_type): s for s in stored}
    by_idem = {s.idempotency_key: s for s in stored if s.idempotency_key}

    # Decide, in input order, which records are new and which repeat a stored or earlier one.
    new_index: list[int] = []
    repeats: dict[int, int] = {}  # record index -> index of the earlier record it repeats
    seen_external: dict[tuple[str, str, str], int] = {}
    seen_idem: dict[str, int] = {}
    outcomes: list[IngestOutcome | None] = [None] * len(records)
    status_changes: dict[int, str] = {}
    refold_leads: set[int] = set()
    for i, record in enumerate(records):
        key = record.external_key
        hit = (by_idem.get(record.idempotency_key) if record.idempotency_key else None) or (
            by_external.get(key) if key else None
        )
        if hit is not None:
            changed = hit.status != record.status
            if changed:
                status_changes[hit.id] = record.status
                refold_leads.add(hit.lead_id)
            outcomes[i] = _duplicate(hit, changed=changed)
            continue
        earlier = seen_idem.get(record.idempotency_key) if record.idempotency_key else None
        if earlier is None and key is not None:
            earlier = seen_external.get(key)
        if earlier is not None:
            repeats[i] = earlier
            continue
        if key is not None:
            seen_external[key] = i
        if record.idempotency_key:
            seen_idem[record.idempotency_key] = i
        new_index.append(i)

    await before_writes()
    await update_event_statuses(session, status_changes)
    new_records = [records[i] for i in new_index]
    stored_together = await _store_together(session, new_records, now)
    if stored_together is not None:
        lead_refs, rows, inserted = stored_together
    else:
        lead_refs = await _upsert_leads_for(session, new_records, now)
        rows = []
        for record in new_records:
            rows.append(event_row(record, lead_refs[record.lead_key].id, now))
        inserted = await insert_events(session, rows)

    created_once: set[tuple[str, str]] = set()
    for i, (event_id, created_at), row in zip(new_index, inserted, rows, strict=True):
        record = records[i]
        lead_key = record.lead_key
        ref = lead_refs[lead_key]
        # A new lead is "created" by its first event only; later ones in the batch update it.
        lead_created = ref.created and lead_key not in created_once
        created_once.add(lead_key)
        outcomes[i] = IngestOutcome(
            status="accepted",
            event_id=event_id,
            lead_id=row["lead_id"],
            lead_created=lead_created,
            occurred_at=record.occurred_at,
            created_at=created_at,
            source_type=record.source_type,
            event_type=record.event_type,
            stage=record.stage,
            email=record.email,
        )
    # After the inserts: the refold reads the chunk's new events of these leads too.
    await refold(session, refold_leads)
    for i, earlier in repeats.items():
        first = outcomes[earlier]
        assert first is not None
        # A repeat inside the batch answers with the event its first occurrence stored.
        outcomes[i] = dataclasses.replace(first, status="duplicate", lead_created=False)
    return [o for o in outcomes if o is not None]


def _by_person(records: Sequence[EventRecord]) -> dict[tuple[str, str], list[EventRecord]]:
    """Records grouped by lead key, each group in input (arrival) order."""
    groups: dict[tuple[str, str], list[EventRecord]] = {}
    for record in records:
        groups.setdefault(record.lead_key, []).append(record)
    return groups


async def _store_together(
    session: AsyncSession, records: Sequence[EventRecord], now: datetime
) -> tuple[dict[tuple[str, str], LeadRef], list[dict[str, Any]], list[tuple[int, Any]]] | None:
    """Email leads and their events in one statement where the database allows (see
    ``bulk.can_store_together``); None when the general path must run."""
    if not records or any(r.lead_key[0] != "email" for r in records):
        return None
    lead_rows = [lead_row(group, now) for group in _by_person(records).values()]
    if not can_store_together(session, lead_rows):
        return None
    rows = [event_row(record, 0, now) for record in records]
    emails = [record.lead_key[1] for record in records]
    by_email, inserted = await store_email_leads_with_events(session, lead_rows, rows, emails)
    refs = {("email", email): ref for email, ref in by_email.items()}
    for row, email in zip(rows, emails, strict=True):
        row["lead_id"] = by_email[email].id
    return refs, rows, inserted


async def _upsert_leads_for(
    session: AsyncSession, records: Sequence[EventRecord], now: datetime
) -> dict[tuple[str, str], LeadRef]:
    groups = _by_person(records)
    refs: dict[tuple[str, str], LeadRef] = {}
    for kind in ("email", "phone"):
        rows = [lead_row(group, now) for (k, _), group in groups.items() if k == kind]
        if kind == "email":
            # Email rows first, so that a phone-only record in the same batch joins them.
            await claim_phones(session, rows)
        for value, ref in (await upsert_leads(session, kind, rows)).items():
            refs[(kind, value)] = ref
    return refs
