"""Receiving Segment messages: dedupe, identity, touchpoints through ``ingest``, stats.

One call per request, in the request's transaction (the edge commits):

1. Messages whose (write key, messageId) is stored are duplicates: nothing else happens.
2. The identity map learns from each new message, in order (see tracking.identity).
3. A touch (a mapped track, a landing page view) whose ids resolve to an email becomes a
   funnel event through ``events.service.ingest``; otherwise it waits as ``pending``.
4. Pending touches of every id whose email or link changed are resolved again; those that
   now have an email are ingested too (older events: first touch and stage follow the
   lead upsert rules). Unmapped track names are stored and counted, nothing more.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import TrackingMessage
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.tracking import repository
from signup_sync.tracking.config import WriteKey
from signup_sync.tracking.erased import split_erased
from signup_sync.tracking.identity import IdentityGraph, Key
from signup_sync.tracking.messages import Parsed, names_of, to_record
from signup_sync.tracking.schemas import (
    MessageProblem,
    TrackingOut,
    TrackingStats,
    UnmappedCount,
    UnmappedStat,
)

DROPPED = "dropped"  # not a stored status: marks a new row that is not inserted


@dataclass(slots=True)
class _Touch:
    """A touch to ingest: a new message row (dict) or a stored pending row (id)."""

    record: EventRecord
    row: dict[str, Any] | None = None
    stored_id: int | None = None

    @property
    def order(self) -> tuple[int, int]:
        """Earlier requests' touches first, then this one's in message order: ``ingest``
        breaks equal times by input order, and clients send times to the millisecond."""
        if self.stored_id is not None:
            return (0, self.stored_id)
        return (1, self.row["index"] if self.row else 0)


@dataclass(slots=True)
class _Plan:
    rows: list[dict[str, Any]] = field(default_factory=list)
    touches: list[_Touch] = field(default_factory=list)
    waiting: list[tuple[Parsed, dict[str, Any]]] = field(default_factory=list)


def _ids_of(message: Parsed) -> set[Key]:
    keys: set[Key] = set()
    if message.anonymous_id:
        keys.add(("anon", message.anonymous_id))
    if message.user_id:
        keys.add(("user", message.user_id))
    if message.previous_id:
        keys |= {("anon", message.previous_id), ("user", message.previous_id)}
    return keys


def _row(message: Parsed, key: WriteKey, received_at: datetime) -> dict[str, Any]:
    if message.is_touch:
        status = "pending"
    elif message.unmapped:
        status = "unmapped"
    else:
        status = "recorded"
    return {
        "write_key_id": key.id,
        "message_id": message.message_id,
        "type": message.type,
        "status": status,
        "event_name": message.event_name,
        "event_type": message.event_type.value if message.event_type else None,
        "source_type": key.source_type,
        "anonymous_id": message.anonymous_id,
        "user_id": message.user_id,
        "lead_id": None,
        "event_id": None,
        "occurred_at": message.occurred_at,
        "received_at": received_at,
        "payload": message.payload,
        "created_at": received_at,
        "index": message.index,  # not a column: orders the request's touches
    }


def _record(message: Parsed, row: dict[str, Any], email: str) -> EventRecord:
    assert message.event_type is not None
    return to_record(
        message.payload,
        message_id=message.message_id,
        event_type=message.event_type.value,
        source_type=row["source_type"],
        occurred_at=message.occurred_at,
        email=email,
    )


async def _affected(session: AsyncSession, graph: IdentityGraph) -> set[Key]:
    """Changed ids and every id linked to them, however indirectly (bounded)."""
    affected = set(graph.changed)
    frontier = {value for kind, value in affected if kind == "user"}
    for _ in range(8):
        if not frontier:
            break
        found = set(await repository.linked_to(session, sorted(frontier)))
        found |= {k for k, n in graph.nodes.items() if n.linked_user in frontier}
        new = found - affected
        affected |= new
        frontier = {value for kind, value in new if kind == "user"}
    return affected


async def receive(
    session: AsyncSession, key: WriteKey, messages: list[Parsed], received_at: datetime
) -> TrackingOut:
    """Store one request's valid messages (see the module docstring). Does not commit."""
    await repository.lock_identities(session, set().union(*map(_ids_of, messages)))
    stored = await repository.existing_message_ids(
        session, key.id, [m.message_id for m in messages]
    )
    new: list[Parsed] = []
    for message in messages:
        if message.message_id not in stored:
            stored.add(message.message_id)  # a repeat within the request is a duplicate too
            new.append(message)

    fresh = len(new)
    new, dropped = await split_erased(session, new)  # an erased person's: stored nowhere
    graph = IdentityGraph()
    await repository.load_identities(session, graph, set().union(*map(_ids_of, new)))
    plan = _Plan()
    for message in new:
        graph.observe(message)
        row = _row(message, key, received_at)
        plan.rows.append(row)
        if message.is_touch:
            email = graph.resolve(message.anonymous_id, message.user_id)
            if email:
                plan.touches.append(_Touch(_record(message, row, email), row=row))
            else:
                plan.waiting.append((message, row))

    attached = await _attach_pending(session, graph, plan)
    _add_identified_names(graph, new, plan.touches)
    plan.touches.sort(key=lambda t: t.order)
    outcomes = await ingest(session, [t.record for t in plan.touches])
    done: list[tuple[int, int, int]] = []
    gone: list[int] = []
    for touch, outcome in zip(plan.touches, outcomes, strict=True):
        if outcome.status == "erased":
            # Its person was erased (their phone, or an email the pre-check did not see):
            # the message is not kept either, new or stored.
            if touch.row is not None:
                touch.row["status"] = DROPPED
                dropped += 1
            elif touch.stored_id is not None:
                gone.append(touch.stored_id)
        elif touch.row is not None:
            touch.row.update(
                status="touchpoint", lead_id=outcome.lead_id, event_id=outcome.event_id
            )
        elif touch.stored_id is not None:
            done.append((touch.stored_id, outcome.lead_id, outcome.event_id))
    plan.rows = [row for row in plan.rows if row["status"] != DROPPED]
    await repository.insert_messages(
        session, [{k: v for k, v in row.items() if k != "index"} for row in plan.rows]
    )
    await repository.mark_touchpoints(session, done)
    await repository.delete_messages(session, gone)
    await repository.save_identities(session, graph, received_at)

    unmapped = Counter(m.event_name or "" for m in new if m.unmapped)
    return TrackingOut(
        received=len(messages),
        accepted=fresh - dropped,
        duplicates=len(messages) - fresh,
        dropped=dropped,
        touchpoints=sum(1 for o in outcomes if o.status == "accepted"),
        attached=attached,
        pending=sum(1 for row in plan.rows if row["status"] == "pending"),
        unmapped=[UnmappedCount(event=name, count=n) for name, n in sorted(unmapped.items())],
        warnings=[
            MessageProblem(
                index=m.index,
                field="traits.email",
                message="not a valid email address; the message was stored without it",
            )
            for m in new
            if m.bad_email
        ],
    )


def _add_identified_names(graph: IdentityGraph, new: list[Parsed], touches: list[_Touch]) -> None:
    """An identify's name and company fill the blanks of its person's touches in the request
    (a lead takes names only through events: see the lead upsert rules)."""
    names: dict[str, dict[str, str]] = {}
    for message in new:
        if message.type == "identify":
            email = graph.resolve(message.anonymous_id, message.user_id)
            if email:
                names.setdefault(email, {}).update(names_of(message.payload))
    for touch in touches:
        for name, value in names.get(touch.record.email or "", {}).items():
            if getattr(touch.record, name) is None:
                setattr(touch.record, name, value)


async def _attach_pending(session: AsyncSession, graph: IdentityGraph, plan: _Plan) -> int:
    """Resolve waiting touches (this request's and stored ones) whose ids changed."""
    waiting = plan.waiting
    plan.waiting = []
    for message, row in waiting:
        email = graph.resolve(message.anonymous_id, message.user_id)
        if email:
            plan.touches.append(_Touch(_record(message, row, email), row=row))
    affected = await _affected(session, graph)
    if not affected:
        return 0
    pending = await repository.pending_messages(
        session,
        [v for k, v in affected if k == "anon"],
        [v for k, v in affected if k == "user"],
    )
    others: set[Key] = set()
    for p in pending:
        others |= {("anon", p.anonymous_id)} if p.anonymous_id else set()
        others |= {("user", p.user_id)} if p.user_id else set()
    await repository.load_identities(session, graph, others)
    attached = 0
    for p in pending:
        email = graph.resolve(p.anonymous_id, p.user_id)
        if not email:
            continue
        record = to_record(
            p.payload,
            message_id=p.message_id,
            event_type=p.event_type,
            source_type=p.source_type,
            occurred_at=p.occurred_at,
            email=email,
        )
        plan.touches.append(_Touch(record, stored_id=p.id))
        attached += 1
    return attached


async def stats(session: AsyncSession, limit: int = 100) -> TrackingStats:
    by_status = await repository.count_by(session, TrackingMessage.status)
    return TrackingStats(
        messages=sum(by_status.values()),
        by_status=by_status,
        by_type=await repository.count_by(session, TrackingMessage.type),
        by_write_key=await repository.count_by(session, TrackingMessage.write_key_id),
        unmapped_events=[
            UnmappedStat(event=name, count=n, last_received_at=last)
            for name, n, last in await repository.unmapped_events(session, limit)
        ],
        identities=await repository.identity_count(session),
    )
