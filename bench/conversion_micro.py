"""In-process cost of ``POST /funnel/conversion`` for leads with 50 touchpoints.

``python -m bench.conversion_micro --pg postgresql://postgres@127.0.0.1:5432/wt_conv``:
recreates and migrates that database, stores ``--leads`` leads with exactly 50 touchpoints
each through the service's own ingestion, then times ``--conversions`` conversions one
after another (a new conversion type per lap over the leads, as ``bench/lua/conversion.lua``
sends them) through the whole app (``httpx.ASGITransport``: validation, route, service,
response serialisation) or, with ``--layer service``, through ``record_conversion`` in a
unit of work. Prints conversions/s and the CPU milliseconds each took in this process and
in the PostgreSQL backends (read from /proc: the server must run on this machine), then
digests of every answer and of the stored conversions and credits (``--dump FILE`` writes
them: two versions of the code that store and answer the same have the same digests).
``--profile`` adds a cProfile top 20 (own time, cumulative time) of a second, profiled pass.
The machine's other load moves the rates; the CPU milliseconds move less.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import os
import pstats
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import db
from signup_sync.events.records import EventRecord

TOKEN = "bench-conversion-micro-token"  # noqa: S105 - a throw-away local test token
TOUCHES = 50
LOOKBACK_DAYS = 90
CONVERTED_AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def email(i: int) -> str:
    return f"heavy.{i}@conv.micro.example"


def _records(i: int) -> list[EventRecord]:
    """A lead's 50 touchpoints spread over the lookback (the shapes of bench/dataset.py)."""
    from signup_sync.vocabulary import EventType, SourceType

    rng = random.Random(f"conversion-micro:{i}")
    kinds = [
        (SourceType.ZOOM, EventType.WEBINAR_REGISTERED),
        (SourceType.ZOOM, EventType.WEBINAR_ATTENDED),
        (SourceType.EVENTBRITE, EventType.EVENT_REGISTERED),
        (SourceType.EVENTBRITE, EventType.EVENT_ATTENDED),
        (SourceType.EASYAPPOINTMENTS, EventType.APPOINTMENT_BOOKED),
        (SourceType.MANUAL, EventType.LEAD_CAPTURED),
    ]
    campaigns = [None, ("google", "cpc", "brand_search"), ("newsletter", "email", "monthly")]
    start = CONVERTED_AT - timedelta(days=LOOKBACK_DAYS - 5)
    step = (LOOKBACK_DAYS - 10) * 86400 / TOUCHES
    out: list[EventRecord] = []
    for j in range(TOUCHES):
        source, event = kinds[0 if j == 0 else rng.randrange(len(kinds))]
        utm = campaigns[rng.randrange(len(campaigns))]
        metadata = {"item": {"kind": "webinar", "id": str(j % 7), "name": f"Webinar {j % 7}"}}
        out.append(
            EventRecord(
                source_type=source.value,
                event_type=event.value,
                occurred_at=start + timedelta(seconds=int(j * step + rng.uniform(0, step / 2))),
                email=email(i),
                first_name="Heavy",
                last_name=f"Lead {i}",
                external_id=f"conversion-micro-{i}-{j}",
                utm_source=utm[0] if utm else None,
                utm_medium=utm[1] if utm else None,
                utm_campaign=utm[2] if utm else None,
                metadata=metadata if j % 3 == 0 else None,
            )
        )
    return out


def _body(i: int, lap: int) -> dict[str, object]:
    return {
        "email": email(i),
        "user_id": f"user-{i}",
        "conversion_type": f"micro_{lap}",
        "value": "99.00",
        "currency": "USD",
        "converted_at": CONVERTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def _seed(factory: async_sessionmaker[AsyncSession], leads: int) -> None:
    from signup_sync.db.session import run_in_transaction
    from signup_sync.events.service import ingest

    for i in range(leads):
        records = _records(i)
        await run_in_transaction(factory, partial(ingest, records=records))


async def _run(args: argparse.Namespace) -> dict[str, str]:
    """Seed, time (and profile); digests of what was stored and answered."""
    from signup_sync.app import create_app
    from signup_sync.conversions.schemas import ConversionIn
    from signup_sync.conversions.service import record_conversion
    from signup_sync.db.session import run_in_transaction
    from signup_sync.settings import load_settings

    url = args.pg
    await db.recreate(url)
    await db.migrate(url)
    settings = load_settings(
        database_url=url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        webhook_worker_enabled=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        factory = app.state.session_factory
        started = time.perf_counter()
        await _seed(factory, args.leads)
        print(f"seeded {args.leads} leads x {TOUCHES} touchpoints in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://micro",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        )
        counter = 0
        answers = hashlib.sha256()

        async def one_http() -> None:
            nonlocal counter
            i, lap = counter % args.leads, counter // args.leads
            counter += 1
            r = await client.post("/funnel/conversion", json=_body(i, lap))
            if r.status_code != 201 or len(r.json()["touchpoints"]) != TOUCHES:
                raise SystemExit(f"unexpected answer {r.status_code}: {r.text[:300]}")
            answers.update(r.content)

        async def one_service() -> None:
            nonlocal counter
            i, lap = counter % args.leads, counter // args.leads
            counter += 1
            data = ConversionIn.model_validate(_body(i, lap))
            out = await run_in_transaction(factory, lambda s: record_conversion(s, data))
            if out.duplicate or len(out.touchpoints) != TOUCHES:
                raise SystemExit(f"unexpected answer: {out!r:.300}")
            answers.update(out.model_dump_json().encode())

        one = one_http if args.layer == "http" else one_service
        for _ in range(min(20, args.conversions)):  # warm-up: statement caches, pool
            await one()
        rate, cpu_ms, server_ms = await _timed(one, args.conversions, url)
        print(f"{args.layer}: {args.conversions} conversions of {TOUCHES} touchpoints: "
              f"{rate:.1f} conversions/s ({1000 / rate:.2f} ms each; CPU ms each: "
              f"{cpu_ms:.2f} here, {server_ms:.2f} in PostgreSQL)")  # fmt: skip
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await _timed(one, args.conversions, url)
            profiler.disable()
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(20)
                print(f"--- cProfile top 20 by {order} ---")
                print(out.getvalue())
        if args.show:
            r = await client.post("/funnel/conversion", json=_body(0, 10_000))
            print(r.text)
        return await _digests(factory, answers)
    return {}


async def _digests(
    factory: async_sessionmaker[AsyncSession], answers: hashlib._Hash
) -> dict[str, str]:
    """What the runs stored and answered, for comparing two versions of the code."""
    queries = {
        "credits": "SELECT * FROM funnel_attribution_credits ORDER BY id",
        "conversions": "SELECT id, lead_id, user_id, conversion_type, value, currency,"
        " converted_at, lookback_days, converted_event_id, first_touch_event_id,"
        " first_touch_source_type, first_touch_at, last_touch_event_id,"
        " last_touch_source_type, last_touch_at, days_to_conversion, total_touchpoints,"
        " attribution FROM funnel_conversions ORDER BY id",
    }
    summary = {"answers_sha256": answers.hexdigest()}
    async with factory() as session:
        for name, sql in queries.items():
            rows = (await session.execute(text(sql))).all()
            digest = hashlib.sha256()
            for row in rows:
                digest.update(orjson.dumps([str(v) for v in row]))
            summary[name] = f"{len(rows)} rows, sha256 {digest.hexdigest()}"
    return summary


async def _server_cpu_seconds(url: str) -> float:
    """CPU time so far of the PostgreSQL backends serving this database (same machine)."""
    conn = await asyncpg.connect(db.plain(url))
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    ticks = 0
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # noqa: ASYNC240 - /proc, no disk
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _timed(
    one: Callable[[], Awaitable[None]], n: int, url: str
) -> tuple[float, float, float]:
    """Conversions per second of wall time; CPU milliseconds of each in this process and in
    the database server's backends."""
    server = await _server_cpu_seconds(url)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await one()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    server = await _server_cpu_seconds(url) - server
    return n / wall, cpu * 1000 / n, server * 1000 / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pg", required=True, help="PostgreSQL URL of a database to recreate")
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--conversions", type=int, default=600)
    parser.add_argument("--layer", choices=("http", "service"), default="http")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--show", action="store_true", help="print one answer")
    parser.add_argument("--dump", help="write the digests of what was stored and answered here")
    args = parser.parse_args(argv)
    summary = asyncio.run(_run(args))
    print(summary)
    if args.dump:
        Path(args.dump).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
