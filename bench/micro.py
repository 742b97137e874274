"""``python -m bench.micro [--pg URL]``: in-process costs behind BENCHMARKS.md's analysis.

Not part of the table (no baseline of its own): the client CPU and wall time of one database
round trip (raw asyncpg vs SQLAlchemy's session, the same statements), of ingesting
1,000-event batches through ``events.service.ingest``, and of validating batch items.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import uvloop
from sqlalchemy import text

from bench import db
from signup_sync.db.session import create_engine, create_session_factory, run_in_transaction
from signup_sync.events.batch import validate_items
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.settings import Settings


async def _per_call(fn: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    """(wall µs, client CPU µs) per call, after a warm-up."""
    for _ in range(max(20, n // 10)):
        await fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def _records(tag: str, n: int = 1000) -> list[EventRecord]:
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    return [
        EventRecord(
            source_type="zoom",
            event_type="webinar_registered",
            occurred_at=at,
            email=f"micro-{tag}-{i}@bench.example",
            first_name="Ana",
            last_name="García",
            external_id=f"micro-{tag}-{i}",
            utm_source="google",
            utm_medium="cpc",
            utm_campaign="brand_search",
        )
        for i in range(n)
    ]


def _items(n: int = 1000) -> list[dict[str, str]]:
    return [
        {
            "source_type": "zoom",
            "event_type": "webinar_registered",
            "email": f"item{i}@bench.example",
            "first_name": "Ana",
            "external_id": f"item-{i}",
            "utm_source": "google",
            "occurred_at": "2026-11-01T12:00:00Z",
        }
        for i in range(n)
    ]


async def main(url: str) -> None:
    await db.recreate(url)
    await db.migrate(url)
    raw = await asyncpg.connect(db.plain(url))
    select_one = await raw.prepare("SELECT 1")
    wall, cpu = await _per_call(select_one.fetchval, 3000)
    print(f"round trip, asyncpg prepared SELECT 1: {wall:.0f} µs wall, {cpu:.0f} µs client CPU")

    async def raw_transaction() -> None:
        async with raw.transaction():
            await select_one.fetchval()

    wall, cpu = await _per_call(raw_transaction, 1000)
    print(f"BEGIN + SELECT 1 + COMMIT, asyncpg: {wall:.0f} µs wall, {cpu:.0f} µs client CPU")
    await raw.close()

    engine = create_engine(Settings(ENGARDE_DATABASE_URL=url, SIGNUP_SYNC_SERVICE_TOKEN="t" * 32))
    factory = create_session_factory(engine)

    async def session_transaction() -> None:
        async with factory() as session:
            await session.execute(text("SELECT 1"))
            await session.commit()

    wall, cpu = await _per_call(session_transaction, 1000)
    print(f"BEGIN + SELECT 1 + COMMIT, SQLAlchemy session: {wall:.0f} µs wall, {cpu:.0f} µs CPU")

    batches = iter([_records(f"b{k}") for k in range(80)])

    async def one_batch() -> None:
        records = next(batches)
        await run_in_transaction(factory, lambda session: ingest(session, records))

    wall, cpu = await _per_call(one_batch, 50)
    print(f"ingest, 1,000-event batch: {wall / 1000:.1f} µs wall, {cpu / 1000:.1f} µs CPU a row")
    await engine.dispose()

    items = _items()

    async def validate() -> None:
        validate_items(items)

    wall, cpu = await _per_call(validate, 20)
    print(f"batch item validation (Pydantic): {cpu / 1000:.1f} µs CPU an item")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument(
        "--pg",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/signup_sync_bench_micro",
        help="database to (re)create for the measurement",
    )
    uvloop.run(main(parser.parse_args().pg))  # the loop the service runs on
