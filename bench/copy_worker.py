"""Baseline for batches: asyncpg ``copy_records_to_table`` of the same rows, bare table.

``python -m bench.copy_worker URL SECONDS CONNECTIONS BATCH`` prints JSON {rows, seconds}.
The rows are what ingestion would build for the batch endpoint's events (event_row), made
before the clock starts; each connection COPYs BATCH-row batches until time is up.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

import asyncpg
import orjson

import bench  # noqa: F401 - puts this checkout on sys.path

TABLE = "bench_copy_bare"


def rows(batch: int, prefix: str) -> list[tuple[object, ...]]:
    from signup_sync.db.models import FunnelEvent
    from signup_sync.events.records import EventRecord
    from signup_sync.events.service import event_row

    columns = [c.name for c in FunnelEvent.__table__.columns]
    now = datetime.now(UTC)
    out = []
    for i in range(batch):
        ident = f"{prefix}-{i}"
        record = EventRecord(
            source_type="zoom",
            event_type="webinar_registered",
            occurred_at=datetime(2026, 11, 1, 12, tzinfo=UTC),
            email=f"b{ident}@bench.example",
            first_name="Ana",
            last_name="García",
            external_id=ident,
            utm_source="google",
            utm_medium="cpc",
            utm_campaign="brand_search",
        )
        row = event_row(record, 0, now)
        row["id"] = i
        row["metadata"] = orjson.dumps(row["metadata"]).decode() if row["metadata"] else None
        out.append(tuple(row[c] for c in columns))
    return out


async def main(url: str, seconds: float, connections: int, batch: int) -> None:
    from signup_sync.db.models import FunnelEvent

    columns = [c.name for c in FunnelEvent.__table__.columns]
    data = rows(batch, "copy")
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    copied = 0
    deadline = time.monotonic() + seconds

    async def loop(conn: asyncpg.Connection) -> None:
        nonlocal copied
        while time.monotonic() < deadline:
            await conn.copy_records_to_table(TABLE, records=data, columns=columns)
            copied += len(data)

    started = time.monotonic()
    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.monotonic() - started
    for c in conns:
        await c.close()
    print(orjson.dumps({"rows": copied, "seconds": elapsed}).decode())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
