"""Over the 1M-lead / 10M-event data set: funnel metrics vs count(*), and conversions."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from datetime import timedelta

import asyncpg
import httpx

from bench import dataset, db, procs
from bench.load import wrk
from bench.procs import Servers
from bench.profiles import Profile

WINDOW_END = dataset.END - timedelta(days=1)  # end_date is inclusive
WINDOW_START = dataset.END - timedelta(days=30)
QUERIES = {
    "metrics_all": "",
    "metrics_30d": f"?start_date={WINDOW_START:%Y-%m-%d}&end_date={WINDOW_END:%Y-%m-%d}",
}


async def prepare(url: str) -> None:
    conn = await asyncpg.connect(db.plain(url))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline_events (LIKE funnel_events INCLUDING ALL)"
        )
        await conn.execute("TRUNCATE bench_baseline_events")
    finally:
        await conn.close()


def servers(url: str) -> contextlib.AbstractContextManager[Servers]:
    return procs.service_and_baseline(url, "ours-10m")


async def _count_ms(url: str, n: int) -> float:
    conn = await asyncpg.connect(db.plain(url))
    try:
        await conn.fetchval("SELECT count(*) FROM funnel_events")
        times = []
        for _ in range(n):
            started = time.perf_counter()
            await conn.fetchval("SELECT count(*) FROM funnel_events")
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        await conn.close()


def _metrics_ms(base: str, query: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {procs.TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        client.get("/analytics/funnel-metrics" + query).raise_for_status()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            client.get("/analytics/funnel-metrics" + query).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def metrics_run(s: Servers, url: str, p: Profile) -> dict[str, dict[str, float]]:
    """Median latency of the endpoint vs median of count(*), measured back to back."""
    out = {}
    for key, query in QUERIES.items():
        count = asyncio.run(_count_ms(url, p.metrics_requests))
        ours = _metrics_ms(s.ours, query, p.metrics_requests)
        out[key] = {"ours": ours, "baseline": count}
    return out


def conversion_run(s: Servers, url: str, p: Profile) -> dict[str, dict[str, float]]:
    """Conversions of leads with 50 touchpoints vs the one-INSERT endpoint, 64 connections."""
    prefix = uuid.uuid4().hex[:8]
    base = wrk(
        s.baseline, "event.lua", ["/funnel/event", prefix, procs.TOKEN],
        connections=p.connections, seconds=p.seconds,
    ).check("baseline")  # fmt: skip
    converted_at = dataset.conversion_time().strftime("%Y-%m-%dT%H:%M:%SZ")
    threads = min(2, p.connections)
    ours = wrk(
        s.ours, "conversion.lua",
        ["/funnel/conversion", prefix, procs.TOKEN, str(p.dataset.heavy_leads), str(threads),
         converted_at],
        connections=p.connections, seconds=p.seconds, threads=threads,
    ).check("conversion")  # fmt: skip
    return {"conversion_rps": {"ours": ours.rps, "baseline": base.rps}}


async def cleanup(url: str, spec: dataset.DatasetSpec) -> None:
    """Undo the benchmark's conversions so the cached data set stays as generated."""
    conn = await asyncpg.connect(db.plain(url))
    try:
        await conn.execute("DELETE FROM funnel_conversions WHERE conversion_type LIKE 'bench\\_%'")
        await conn.execute(
            "DELETE FROM funnel_events WHERE event_type = 'converted'"
            " AND external_id LIKE 'conversion:bench\\_%'"
        )
        # Heavy leads are ids leads+1 .. total (see dataset.build_chunk): back to generated state.
        await conn.execute(
            """UPDATE funnel_leads l SET stage = e.stage, last_seen_at = e.last_seen,
                   converted_at = NULL, stage_4_at = NULL, stage_5_at = NULL, stage_6_at = NULL
                FROM (SELECT lead_id, max(stage) AS stage, max(occurred_at) AS last_seen
                      FROM funnel_events WHERE lead_id BETWEEN $1 AND $2 GROUP BY lead_id) e
                WHERE e.lead_id = l.id AND l.converted_at IS NOT NULL""",
            spec.leads + 1,
            spec.total_leads,
        )
        await conn.execute("TRUNCATE bench_baseline_events")
        for table in ("funnel_events", "funnel_leads", "funnel_conversions"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
