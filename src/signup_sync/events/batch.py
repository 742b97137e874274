"""Batch ingestion: validate items one by one, store the valid ones in one transaction."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.events.records import EventRecord
from signup_sync.events.schemas import BatchItemOut, BatchOut, EventIn, FieldError, to_record
from signup_sync.events.service import ingest

_EVENT = TypeAdapter(EventIn)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(p) for p in err["loc"]) or "item",
            message=str(err["msg"]).removeprefix("Value error, "),
        )
        for err in exc.errors()
    ]


def validate_items(items: list[Any]) -> tuple[list[tuple[int, EventRecord]], list[BatchItemOut]]:
    """Split items into records to store and rejections naming the field and the reason."""
    valid: list[tuple[int, EventRecord]] = []
    rejected: list[BatchItemOut] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, to_record(_EVENT.validate_python(item))))
        except ValidationError as exc:
            rejected.append(BatchItemOut(index=index, status="rejected", errors=_field_errors(exc)))
    return valid, rejected


async def ingest_batch(session: AsyncSession, items: list[Any]) -> BatchOut:
    valid, rejected = validate_items(items)
    outcomes = await ingest(session, [record for _, record in valid])
    results = list(rejected)
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        stored = outcome.status != "erased"
        results.append(
            BatchItemOut(
                index=index,
                status=outcome.status,
                event_id=outcome.event_id if stored else None,
                lead_id=outcome.lead_id if stored else None,
            )
        )
    results.sort(key=lambda r: r.index)
    accepted = sum(1 for r in results if r.status == "accepted")
    duplicates = sum(1 for r in results if r.status == "duplicate")
    erased = sum(1 for r in results if r.status == "erased")
    return BatchOut(
        accepted=accepted,
        duplicates=duplicates,
        erased=erased,
        rejected=len(rejected),
        results=results,
    )
