"""EasyAppointments deletions: appointments removed at the source become ``cancelled``.

Deleting is EA's normal cancel path (the customer's cancel link, the admin calendar and the
API hard-delete the row; deleting a customer, provider or service cascades, with no
webhook), so no cursor ever sees it. Every ``deletion_check_hours`` a run compares the
appointment ids it stored for this source (``SourceContext.stored``, keyset chunks) with the
ones still at the source:

* API: an id-only scan (``fields=id``, ``length=id_scan_length``, ``sort=id``) pages until a
  short page; ids must rise strictly from page to page (a server that ignores ``page``
  repeats its first page: ``PaginationLoopError``, never an endless loop). Offset pages
  shift when a row is deleted mid-scan, which could hide a live row: ids missing from the
  first scan are confirmed by a second one before they count as deleted.
* MySQL: per chunk of stored ids, one ``SELECT id ... WHERE id IN (...)`` against
  ``ea_appointments``: the ones not found are gone (keyset reads, nothing shifts).

Each deleted appointment becomes a "gone" record: its stored events again, ``cancelled``,
keyed like the originals, so ingestion changes their status and folds their lead again.
Only events stored before the check began are candidates (a webhook may store a brand-new
appointment meanwhile). A deleted appointment that shows up again (a later save) is active
again through the normal reads.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from signup_sync.events.records import EventRecord
from signup_sync.sources.base import Page, SourceContext, StoredEvents, StoredRef
from signup_sync.sources.errors import SkipRecord
from signup_sync.vocabulary import SourceType

SOURCE = SourceType.EASYAPPOINTMENTS.value
PREFIX = "appointment:"
STORED_CHUNK = 1000
GONE = "gone"


def appointment_id(ref: StoredRef) -> int | None:
    tail = ref.external_id.removeprefix(PREFIX)
    return int(tail) if tail.isdigit() else None


def check_due(ctx: SourceContext, hours: float | None, state: Mapping[str, Any]) -> bool:
    """Whether this run compares ids (never in a backfill or without look-ups)."""
    if hours is None or ctx.stored is None or ctx.since is not None or ctx.until is not None:
        return False
    last = state.get("deletions_checked_at")
    if ctx.force or not isinstance(last, str):
        return True
    return ctx.run_started_at - datetime.fromisoformat(last) >= timedelta(hours=hours)


def contains(ids: array[int], value: int) -> bool:
    """Membership in a strictly ascending array."""
    at = bisect_left(ids, value)
    return at < len(ids) and ids[at] == value


async def stored_chunks(stored: StoredEvents) -> AsyncIterator[list[StoredRef]]:
    """This source's stored appointment events, in keyset chunks."""
    after = 0
    while True:
        refs = await stored.scan(PREFIX, after=after, limit=STORED_CHUNK)
        if not refs:
            return
        yield refs
        after = refs[-1].event_id
        if len(refs) < STORED_CHUNK:
            return


def _live(ref: StoredRef, began: datetime) -> int | None:
    """The appointment id of a stored event that could have been deleted since."""
    if ref.status == "cancelled" or ref.created_at >= began:
        return None
    return appointment_id(ref)


def gone_records(refs: list[StoredRef], gone: Collection[int]) -> list[dict[str, Any]]:
    """One "gone" record per deleted appointment among ``refs``."""
    by_id: dict[int, list[StoredRef]] = {}
    for ref in refs:
        key = appointment_id(ref)
        if key is not None and key in gone and ref.status != "cancelled":
            by_id.setdefault(key, []).append(ref)
    return [{"kind": GONE, "id": key, "events": events} for key, events in by_id.items()]


def map_gone(record: Mapping[str, Any]) -> list[EventRecord]:
    """The stored events of a deleted appointment, cancelled."""
    events = []
    for ref in record["events"]:
        if not (ref.email or ref.phone_e164):
            raise SkipRecord("deleted appointment whose lead has no email or phone")
        events.append(
            EventRecord(
                source_type=SOURCE,
                event_type=ref.event_type,
                occurred_at=ref.occurred_at,
                email=ref.email,
                phone_e164=ref.phone_e164,
                external_id=ref.external_id,
                metadata={"appointment_id": str(record["id"]), "deleted": True},
                status="cancelled",
            )
        )
    return events


async def api_deletions(
    ctx: SourceContext, scan: Callable[[], Awaitable[array[int]]], state: dict[str, Any]
) -> AsyncIterator[Page]:
    """Pages of gone records (API mode), then the cursor with the check's time."""
    assert ctx.stored is not None
    began = datetime.now(UTC)
    seen = await scan()
    suspects: set[int] = set()
    async for refs in stored_chunks(ctx.stored):
        suspects.update(
            k for r in refs if (k := _live(r, began)) is not None and not contains(seen, k)
        )
    del seen
    if suspects:
        # Rows deleted during the first scan shift later ones to pages already read.
        again = await scan()
        suspects = {k for k in suspects if not contains(again, k)}
    if suspects:
        async for refs in stored_chunks(ctx.stored):
            records = gone_records([r for r in refs if r.created_at < began], suspects)
            if records:
                yield Page(records=records, cursor=None, label="deleted at the source")
    state["deletions_checked_at"] = ctx.run_started_at.isoformat()
    yield Page(records=[], cursor=dict(state), label=f"deletions checked ({len(suspects)} gone)")


async def mysql_deletions(
    ctx: SourceContext,
    existing: Callable[[list[int]], Awaitable[set[int]]],
    state: dict[str, Any],
) -> AsyncIterator[Page]:
    """Pages of gone records (MySQL mode: stored ids not in ``ea_appointments``)."""
    assert ctx.stored is not None
    began = datetime.now(UTC)
    total = 0
    async for refs in stored_chunks(ctx.stored):
        ids = sorted({k for r in refs if (k := _live(r, began)) is not None})
        if not ids:
            continue
        gone = set(ids) - await existing(ids)
        records = gone_records([r for r in refs if r.created_at < began], gone)
        total += len(records)
        if records:
            yield Page(records=records, cursor=None, label="deleted at the source")
    state["deletions_checked_at"] = ctx.run_started_at.isoformat()
    yield Page(records=[], cursor=dict(state), label=f"deletions checked ({total} gone)")
