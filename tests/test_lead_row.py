"""A lead made from one record has the values the general fold gives (the fast path)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from signup_sync.events.fold import _folded_lead_row, _lead_row_of_one
from signup_sync.events.records import EventRecord
from signup_sync.vocabulary import EventType, SourceType

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _records() -> list[EventRecord]:
    out = []
    kinds = itertools.product(
        list(EventType),
        ("active", "cancelled"),
        (None, "", "Ana"),
        (None, {"item": {"kind": "webinar", "id": "7", "name": "Intro"}}, {"x": 1}),
        (None, "google"),
    )
    for i, (event_type, status, name, metadata, utm) in enumerate(kinds):
        out.append(
            EventRecord(
                source_type=list(SourceType)[i % len(SourceType)].value,
                event_type=event_type.value,
                occurred_at=datetime(2026, 1, 1 + i % 28, i % 24, tzinfo=UTC),
                email=f"p{i}@example.com" if i % 3 else None,
                phone="+1 415 555 0100" if i % 3 == 0 else "",
                phone_e164="+14155550100" if i % 3 == 0 else None,
                first_name=name,
                company="" if i % 2 else "Acme",
                utm_source=utm,
                utm_medium="cpc" if utm else None,
                referrer="https://www.google.com/" if i % 5 == 0 else None,
                metadata=metadata,
                status=status,
            )
        )
    return out


def test_one_record_lead_row_equals_the_fold() -> None:
    records = _records()
    assert len(records) > 300
    for record in records:
        assert _lead_row_of_one(record, NOW) == _folded_lead_row([record], NOW), record
