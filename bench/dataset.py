"""The large seeded data set (1M leads / 10M events), bulk-loaded with COPY and cached.

Rows are built by the service's own row builders (``events.service.lead_row`` /
``event_row``, ``conversions.credits``) from the demo generator's ``EventRecord`` stream,
so lead state, stage columns and channels are exactly what ingestion would store; only the
transport differs (COPY instead of the API). Two worker processes each build and COPY half
of the leads; indexes and constraints are dropped first and rebuilt after the load.

A fingerprint of the parameters and of the code that shapes the rows is stored in
``bench_dataset``; a database that already holds the same fingerprint is reused as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import multiprocessing
import random
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

import asyncpg
import orjson

from bench import db

END = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so that the cache survives the calendar
DAYS = 182
EVENT_SLOTS = 64  # event id = lead id * 64 + position: ids known before the COPY, no lookups
HEAVY_TOUCHES = 50
HEAVY_DOMAIN = "conv.bench.example"
LOOKBACK_DAYS = 90
CHUNK_LEADS = 5_000


@dataclass(frozen=True)
class DatasetSpec:
    leads: int  # demo leads (the funnel)
    heavy_leads: int  # leads with exactly HEAVY_TOUCHES touchpoints (conversion benchmark)
    extra_touches: float
    seed: int = 42

    @property
    def total_leads(self) -> int:
        return self.leads + self.heavy_leads


def heavy_email(i: int) -> str:
    return f"heavy.{i}@{HEAVY_DOMAIN}"


def conversion_time() -> datetime:
    """When the benchmark's conversions happen: every heavy touchpoint is in the lookback."""
    return END


# --- row building (the service's own functions) --------------------------------------------

LEAD_COLUMNS: tuple[str, ...] = ()
EVENT_COLUMNS: tuple[str, ...] = ()


def _heavy_records(spec: DatasetSpec, i: int) -> list[Any]:
    from signup_sync.events.records import EventRecord
    from signup_sync.vocabulary import EventType, SourceType

    rng = random.Random(f"bench-heavy:{spec.seed}:{i}")
    kinds = [
        (SourceType.ZOOM, EventType.WEBINAR_REGISTERED),
        (SourceType.ZOOM, EventType.WEBINAR_ATTENDED),
        (SourceType.EVENTBRITE, EventType.EVENT_REGISTERED),
        (SourceType.EVENTBRITE, EventType.EVENT_ATTENDED),
        (SourceType.EASYAPPOINTMENTS, EventType.APPOINTMENT_BOOKED),
        (SourceType.MANUAL, EventType.LEAD_CAPTURED),
    ]
    campaigns = [None, ("google", "cpc", "brand_search"), ("newsletter", "email", "monthly")]
    start = END - timedelta(days=LOOKBACK_DAYS - 5)
    step = (LOOKBACK_DAYS - 10) * 86400 / HEAVY_TOUCHES
    out = []
    for j in range(HEAVY_TOUCHES):
        source, event = kinds[0 if j == 0 else rng.randrange(len(kinds))]
        utm = campaigns[rng.randrange(len(campaigns))]
        out.append(
            EventRecord(
                source_type=source.value,
                event_type=event.value,
                occurred_at=start + timedelta(seconds=int(j * step + rng.uniform(0, step / 2))),
                email=heavy_email(i),
                first_name="Heavy",
                last_name=f"Lead {i}",
                external_id=f"bench-heavy-{spec.seed}-{i}-{j}",
                utm_source=utm[0] if utm else None,
                utm_medium=utm[1] if utm else None,
                utm_campaign=utm[2] if utm else None,
            )
        )
    return out


def _converted_record(conversion: Any) -> Any:
    """The ``converted`` event that ``record_conversion`` ingests for a conversion."""
    from signup_sync.events.records import EventRecord
    from signup_sync.vocabulary import EventType, SourceType

    return EventRecord(
        source_type=SourceType.DIRECT_SIGNUP.value,
        event_type=EventType.CONVERTED.value,
        occurred_at=conversion.converted_at,
        email=conversion.email,
        external_id=f"conversion:{conversion.conversion_type}:{conversion.email}",
        metadata={
            "conversion_type": conversion.conversion_type,
            "user_id": conversion.user_id,
            "value": str(conversion.value),
            "currency": conversion.currency,
        },
    )


@dataclass
class Chunk:
    leads: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    conversions: list[tuple[Any, ...]]
    credits: list[tuple[Any, ...]]


def build_chunk(spec: DatasetSpec, first: int, count: int) -> Chunk:
    """Rows of leads ``first .. first+count-1`` (demo leads, then heavy leads)."""
    from signup_sync import demo
    from signup_sync.attribution.touches import Touchpoint, first_and_last, item_of, whole_days
    from signup_sync.conversions.credits import attribute, credit_rows
    from signup_sync.db.models import FunnelConversion
    from signup_sync.events.service import event_row, lead_row
    from signup_sync.vocabulary import EventType

    now = END
    chunk = Chunk([], [], [], [])
    people: list[tuple[int, list[Any], Any]] = []
    demo_end = min(first + count, spec.leads)
    if first < demo_end:
        for lead in demo.generate(
            demo_end - first, spec.seed, end=END, days=DAYS,
            extra_touches=spec.extra_touches, first_index=first,
        ):  # fmt: skip
            people.append((lead.index, lead.events[: EVENT_SLOTS - 1], lead.conversion))
    for index in range(max(first, spec.leads), first + count):
        people.append((index, _heavy_records(spec, index - spec.leads), None))

    for index, records, conversion in people:
        lead_id = index + 1
        if conversion is not None:
            records = [*records, _converted_record(conversion)]
        lead = lead_row(records, now)  # arrival order, as ingestion folds them
        lead["id"] = lead_id
        chunk.leads.append(lead_values(lead))
        rows = []
        for position, record in enumerate(records):
            row = event_row(record, lead_id, now)
            row["id"] = lead_id * EVENT_SLOTS + position
            rows.append(row)
            values = event_values(row)
            # JSON text for asyncpg's jsonb codec; None is JSON null, as ingestion stores it.
            values = (*values[:METADATA_AT], orjson.dumps(row["metadata"]).decode(),
                      *values[METADATA_AT + 1 :])  # fmt: skip
            chunk.events.append(values)
        if conversion is None:
            continue
        # As record_conversion: touchpoints in the lookback, oldest first, then attribution.
        since = conversion.converted_at - timedelta(days=LOOKBACK_DAYS)
        touches = [
            Touchpoint(
                event_id=row["id"],
                source_type=row["source_type"],
                event_type=row["event_type"],
                occurred_at=row["occurred_at"],
                utm_source=row["utm_source"],
                utm_medium=row["utm_medium"],
                utm_campaign=row["utm_campaign"],
                utm_term=row["utm_term"],
                utm_content=row["utm_content"],
                channel=row["channel"],
                item=item_of(row["metadata"])[0],
                item_name=item_of(row["metadata"])[1],
            )
            for row in sorted(rows, key=lambda r: (r["occurred_at"], r["id"]))
            if since <= row["occurred_at"] <= conversion.converted_at
            and row["event_type"] != EventType.CONVERTED
        ]
        first_touch, last_touch = first_and_last(touches)
        attributed = attribute(touches, conversion.converted_at, conversion.value, 7)
        record = FunnelConversion(
            id=lead_id,
            lead_id=lead_id,
            user_id=conversion.user_id,
            conversion_type=conversion.conversion_type,
            value=conversion.value,
            currency=conversion.currency,
            converted_at=conversion.converted_at,
            lookback_days=LOOKBACK_DAYS,
            converted_event_id=rows[-1]["id"],
            first_touch_event_id=first_touch.event_id if first_touch else None,
            first_touch_source_type=first_touch.source_type if first_touch else None,
            first_touch_at=first_touch.occurred_at if first_touch else None,
            last_touch_event_id=last_touch.event_id if last_touch else None,
            last_touch_source_type=last_touch.source_type if last_touch else None,
            last_touch_at=last_touch.occurred_at if last_touch else None,
            days_to_conversion=(
                whole_days(first_touch.occurred_at, conversion.converted_at)
                if first_touch
                else None
            ),
            total_touchpoints=len(touches),
            attribution={
                "first_touch": first_touch.as_json() if first_touch else None,
                "last_touch": last_touch.as_json() if last_touch else None,
                "half_life_days": 7,
                "touchpoints": attributed.touchpoints_json(),
            },
            created_at=now,
        )
        chunk.conversions.append(
            tuple(_db_value(getattr(record, _attr(c))) for c in CONVERSION_COLUMNS)
        )
        for credit in credit_rows(record.id, record.lead_id, attributed):
            chunk.credits.append(tuple(credit[c] for c in CREDIT_COLUMNS))
    return chunk


CONVERSION_COLUMNS: tuple[str, ...] = ()
CREDIT_COLUMNS: tuple[str, ...] = ()
lead_values: Any = None
event_values: Any = None
METADATA_AT = -1


def _attr(column: str) -> str:
    return "event_metadata" if column == "metadata" else column


def _db_value(value: Any) -> Any:
    # asyncpg's jsonb codec takes JSON text.
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _init_columns() -> None:
    from signup_sync.db.models import AttributionCredit, FunnelConversion, FunnelEvent, Lead

    global LEAD_COLUMNS, EVENT_COLUMNS, CONVERSION_COLUMNS, CREDIT_COLUMNS
    global lead_values, event_values, METADATA_AT
    LEAD_COLUMNS = tuple(c.name for c in Lead.__table__.columns)
    EVENT_COLUMNS = tuple(c.name for c in FunnelEvent.__table__.columns)
    lead_values = itemgetter(*LEAD_COLUMNS)
    event_values = itemgetter(*EVENT_COLUMNS)
    METADATA_AT = EVENT_COLUMNS.index("metadata")
    CONVERSION_COLUMNS = tuple(c.name for c in FunnelConversion.__table__.columns)
    CREDIT_COLUMNS = tuple(c.name for c in AttributionCredit.__table__.columns if c.name != "id")


# --- loading ------------------------------------------------------------------------------


def _ranges(total: int, workers: int) -> list[tuple[int, int]]:
    step = -(-total // workers)
    return [(a, min(a + step, total)) for a in range(0, total, step)]


async def _load_range(url: str, spec: DatasetSpec, start: int, stop: int) -> dict[str, int]:
    _init_columns()
    conn = await asyncpg.connect(db.plain(url))
    counts = {"leads": 0, "events": 0, "conversions": 0, "credits": 0}
    try:
        await conn.execute("SET synchronous_commit = off")
        for first in range(start, stop, CHUNK_LEADS):
            chunk = build_chunk(spec, first, min(CHUNK_LEADS, stop - first))
            for table, columns, rows, key in (
                ("funnel_leads", LEAD_COLUMNS, chunk.leads, "leads"),
                ("funnel_events", EVENT_COLUMNS, chunk.events, "events"),
                ("funnel_conversions", CONVERSION_COLUMNS, chunk.conversions, "conversions"),
                ("funnel_attribution_credits", CREDIT_COLUMNS, chunk.credits, "credits"),
            ):
                if rows:
                    await conn.copy_records_to_table(table, records=rows, columns=list(columns))
                    counts[key] += len(rows)
    finally:
        await conn.close()
    return counts


def _worker(args: tuple[str, DatasetSpec, int, int]) -> dict[str, int]:
    return asyncio.run(_load_range(*args))


def fingerprint(spec: DatasetSpec) -> str:
    """Parameters plus the code that shapes the rows: a change to either means a reload."""
    from signup_sync import demo
    from signup_sync.attribution import models as attribution_models
    from signup_sync.channels import rules
    from signup_sync.conversions import credits
    from signup_sync.events import service

    h = hashlib.sha256(orjson.dumps(asdict(spec)))
    h.update(END.isoformat().encode())
    for part in (
        inspect.getsource(service.lead_row),
        inspect.getsource(service.event_row),
        inspect.getsource(demo),
        inspect.getsource(rules),
        inspect.getsource(build_chunk),
        inspect.getsource(_heavy_records),
    ):
        h.update(part.encode())
    # Attribution by what it computes, not by its source: a faster rewrite with the same
    # credits keeps the cached data set.
    h.update(_attribution_sample(attribution_models, credits))
    return h.hexdigest()[:16]


def _attribution_sample(attribution_models: Any, credits: Any) -> bytes:
    from signup_sync.attribution.touches import Touchpoint

    out = []
    start = END - timedelta(days=40)
    for n in (1, 2, 3, 5, 50):
        touches = [
            Touchpoint(
                event_id=i,
                source_type=("zoom", "website", "eventbrite")[i % 3],
                event_type="page_view",
                occurred_at=start + timedelta(hours=17 * i),
                utm_source=None if i % 4 else "google",
                channel=("Direct", "Organic Search", "Webinars")[i % 3],
            )
            for i in range(n)
        ]
        for half_life in (1, 7, 30):
            a = credits.attribute(touches, END, Decimal("1234.56"), half_life)
            text, cents = credits.credit_text, credits.cents_text
            for i in range(n):
                out.append(sorted((m.value, text(u[i])) for m, u in a.credits.items()))
                out.append(sorted((m.value, cents(c[i])) for m, c in a.value_cents.items()))
    out.append([str(attribution_models.CREDIT_UNITS)])
    return orjson.dumps(out)


BIG_TABLES = ("funnel_leads", "funnel_events", "funnel_conversions", "funnel_attribution_credits")


async def _drop_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop constraints and indexes of the big tables; return the statements that rebuild them."""
    tables = list(BIG_TABLES)
    constraints = await conn.fetch(
        """SELECT c.conname, c.contype::text AS contype, c.conrelid::regclass::text AS tbl,
                  pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c
           WHERE c.contype IN ('p', 'u', 'f')
             AND (c.conrelid::regclass::text = ANY($1) OR c.confrelid::regclass::text = ANY($1))""",
        tables,
    )
    owned = {r["conname"] for r in constraints}
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1)", tables
    )
    rebuild: list[str] = []
    for kind in ("p", "u"):
        for r in constraints:
            if r["contype"] == kind:
                rebuild.append(f'ALTER TABLE {r["tbl"]} ADD CONSTRAINT "{r["conname"]}" {r["def"]}')
    rebuild += [r["indexdef"] for r in indexes if r["indexname"] not in owned]
    rebuild += [
        f'ALTER TABLE {r["tbl"]} ADD CONSTRAINT "{r["conname"]}" {r["def"]}'
        for r in constraints
        if r["contype"] == "f"
    ]
    for r in sorted(constraints, key=lambda r: r["contype"] != "f"):  # foreign keys first
        await conn.execute(f'ALTER TABLE {r["tbl"]} DROP CONSTRAINT IF EXISTS "{r["conname"]}"')
    for r in indexes:
        if r["indexname"] not in owned:
            await conn.execute(f'DROP INDEX IF EXISTS "{r["indexname"]}"')
    return rebuild


async def _triggers(conn: asyncpg.Connection, enable: bool) -> None:
    verb = "ENABLE" if enable else "DISABLE"
    for table in BIG_TABLES:
        await conn.execute(f"ALTER TABLE {table} {verb} TRIGGER USER")


async def ensure(url: str, spec: DatasetSpec, log: Any = print) -> dict[str, Any]:
    """Make ``url``'s database hold ``spec``'s data; reuse it when it already does."""
    wanted = fingerprint(spec)
    found = await db.marker(url)
    if found is not None and found.get("fingerprint") == wanted:
        log(f"  data set cached ({found['events']:,} events, {found['leads']:,} leads)")
        # Newer migrations upgrade the cached data as they would upgrade production's.
        await db.migrate(url)
        await _derive(url)
        return found
    log(f"  loading data set: {spec.total_leads:,} leads (fingerprint {wanted}) ...")
    clock = time.monotonic()
    await db.recreate(url)
    await db.migrate(url)
    conn = await asyncpg.connect(db.plain(url))
    try:
        rebuild = await _drop_indexes(conn)
        await _triggers(conn, enable=False)
    finally:
        await conn.close()
    workers = 2 if spec.total_leads >= 2 * CHUNK_LEADS else 1
    jobs = [(url, spec, a, b) for a, b in _ranges(spec.total_leads, workers)]
    if workers == 1:
        results = [await _load_range(*jobs[0])]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            loop = asyncio.get_running_loop()
            results = await asyncio.gather(
                *(loop.run_in_executor(pool, _worker, job) for job in jobs)
            )
    totals = {k: sum(r[k] for r in results) for k in results[0]}
    loaded = time.monotonic() - clock
    log(f"  copied {totals['events']:,} events in {loaded:.0f} s; building indexes ...")
    conn = await asyncpg.connect(db.plain(url))
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        for statement in rebuild:
            await conn.execute(statement)
        await _triggers(conn, enable=True)
        for table in BIG_TABLES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        await conn.execute(
            "INSERT INTO funnel_rollup_dirty (day) SELECT DISTINCT"
            " (first_seen_at AT TIME ZONE 'UTC')::date FROM funnel_leads"
            " UNION SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM funnel_events"
            " ON CONFLICT DO NOTHING"
        )
        for table in BIG_TABLES:
            await conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    finally:
        await conn.close()
    info = {
        "fingerprint": wanted,
        **totals,
        "load_seconds": round(time.monotonic() - clock, 1),
        "spec": asdict(spec),
    }
    await _derive(url)
    info["load_seconds"] = round(time.monotonic() - clock, 1)
    await db.set_marker(url, info)
    log(f"  data set ready in {info['load_seconds']:.0f} s")
    return info


async def _derive(url: str) -> None:
    """Build what the service derives from the rows (the analytics rollups), as it would."""
    from signup_sync.analytics import rollup
    from signup_sync.db.session import create_engine, create_session_factory, unit_of_work
    from signup_sync.settings import load_settings

    engine = create_engine(load_settings(database_url=url, db_timeout_seconds=120))
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            days = await rollup.refresh(session)
    finally:
        await engine.dispose()
    if days:
        conn = await asyncpg.connect(db.plain(url))
        try:
            for table in ("leads", "events", "credits", "conversions"):
                await conn.execute(f"VACUUM ANALYZE funnel_rollup_{table}")
        finally:
            await conn.close()


def iter_heavy_emails(spec: DatasetSpec) -> Iterator[str]:
    return (heavy_email(i) for i in range(spec.heavy_leads))


def summary(info: dict[str, Any]) -> Sequence[str]:
    return [f"{info['leads']:,} leads", f"{info['events']:,} events"]
