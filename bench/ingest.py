"""POST /funnel/event and POST /funnel/events/batch against their one-INSERT / COPY baselines."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg

from bench import db, procs
from bench.load import WrkResult, wrk
from bench.procs import Servers
from bench.profiles import Profile


async def prepare(url: str) -> None:
    """A fresh, migrated ingest database plus the baselines' tables."""
    await db.recreate(url)
    await db.migrate(url)
    conn = await asyncpg.connect(db.plain(url))
    try:
        # The one-INSERT baseline writes to a table shaped like funnel_events (same
        # columns, defaults, keys and indexes); COPY goes to a bare copy (columns only).
        await conn.execute("CREATE TABLE bench_baseline_events (LIKE funnel_events INCLUDING ALL)")
        await conn.execute("CREATE TABLE bench_copy_bare (LIKE funnel_events)")
    finally:
        await conn.close()


async def reset(url: str) -> None:
    """Empty the tables between runs (requests cut off by wrk may still be finishing)."""
    conn = await asyncpg.connect(db.plain(url))
    try:
        for attempt in range(10):
            try:
                await conn.execute(
                    "TRUNCATE funnel_leads, funnel_events, funnel_conversions, "
                    "funnel_attribution_credits, bench_baseline_events, bench_copy_bare CASCADE"
                )
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == 9:
                    raise
                await asyncio.sleep(0.5)
        # No ANALYZE of the emptied tables: see sync.reset.
    finally:
        await conn.close()


def servers(url: str) -> contextlib.AbstractContextManager[Servers]:
    return procs.service_and_baseline(url, "ours")


def _events(base: str, p: Profile, seconds: float) -> WrkResult:
    prefix = uuid.uuid4().hex[:10]
    args = ["/funnel/event", prefix, procs.TOKEN]
    return wrk(base, "event.lua", args, connections=p.connections, seconds=seconds).check(base)


def warm_up(s: Servers, p: Profile) -> None:
    for base in (s.baseline, s.ours):
        _events(base, p, p.warmup_seconds)


def event_run(s: Servers, p: Profile) -> dict[str, dict[str, float]]:
    """Throughput and p99 of unique single events: baseline, then ours, back to back."""
    base = _events(s.baseline, p, p.seconds)
    ours = _events(s.ours, p, p.seconds)
    return {
        "event_rps": {"ours": ours.rps, "baseline": base.rps},
        "event_p99": {"ours": ours.p99_ms, "baseline": base.p99_ms},
    }


def batch_run(s: Servers, url: str, p: Profile) -> dict[str, dict[str, float]]:
    """Rows/s of 1,000-event batches vs COPY of the same rows, same connection count."""
    copy = procs.run_json(
        "bench.copy_worker",
        db.plain(url),
        str(p.seconds),
        str(p.batch_connections),
        str(p.batch_size),
    )
    copy_rps = float(copy["rows"]) / float(copy["seconds"])  # type: ignore[arg-type]
    prefix = uuid.uuid4().hex[:10]
    ours = wrk(
        s.ours,
        "batch.lua",
        ["/funnel/events/batch", prefix, procs.TOKEN, str(p.batch_size)],
        connections=p.batch_connections,
        seconds=p.seconds,
        timeout_s=60,
    ).check("batch")
    return {"batch_rows": {"ours": ours.rps * p.batch_size, "baseline": copy_rps}}


def run_all(url: str, p: Profile, runs: int, log=print) -> list[dict[str, dict[str, float]]]:
    asyncio.run(prepare(url))
    results = []
    with servers(url) as s:
        warm_up(s, p)
        for n in range(runs):
            asyncio.run(reset(url))
            r = event_run(s, p)
            r.update(batch_run(s, url, p))
            log(f"  ingest run {n + 1}: " + ", ".join(
                f"{k} {v['ours']:.0f}/{v['baseline']:.0f}" for k, v in r.items()
            ))  # fmt: skip
            results.append(r)
    return results
