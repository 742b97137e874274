"""Folding leads again from their stored events: after an event's status changes.

The lead upsert can only add records to a fold; a status change can take one away (the
only registration refunded: the lead goes back to stage 0) or add one that was stored
(pending -> approved). ``refold`` recomputes the affected rows from every event of those
leads with the same fold (``events.fold``), in the caller's transaction, after locking the
rows (see ``db.refold.lock_leads``). Names are not folded again: they do not depend on
status.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.refold import FOLD_COLUMNS, events_of, lock_leads, write_leads
from signup_sync.db.types import utcnow
from signup_sync.events.fold import STAGE_NUMBERS, TOUCH_COLUMNS, lead_row
from signup_sync.events.records import EventRecord

FOLDED = (
    "stage", "first_seen_at", "last_seen_at", "converted_at", *TOUCH_COLUMNS,
    *(f"stage_{n}_at" for n in STAGE_NUMBERS),
)  # fmt: skip


async def refold(session: AsyncSession, lead_ids: Iterable[int]) -> None:
    """Recompute these leads' folded columns from their events. Does not commit."""
    ids = sorted({i for i in lead_ids if i})
    if not ids:
        return
    await lock_leads(session, ids)
    records: dict[int, list[EventRecord]] = {}
    for row in await events_of(session, ids):
        values: dict[str, Any] = dict(zip(FOLD_COLUMNS, row[:-1], strict=True))
        lead_id = values.pop("lead_id")
        records.setdefault(lead_id, []).append(EventRecord(email=None, metadata=row[-1], **values))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for lead_id, group in records.items():
        folded = lead_row(group, now)
        rows.append({"lead_id": lead_id, **{n: folded[n] for n in FOLDED}, "updated_at": now})
    await write_leads(session, rows)
