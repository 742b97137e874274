"""Eventbrite sync: ours vs dlt's rest_api on the same fake pages, and peak RSS by size."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import asyncpg

from bench import db, procs
from bench.profiles import Profile


async def reset(url: str) -> None:
    conn = await asyncpg.connect(db.plain(url))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS dlt_eventbrite CASCADE")
        await conn.execute("DROP SCHEMA IF EXISTS dlt_eventbrite_staging CASCADE")
        await conn.execute(
            "TRUNCATE funnel_sync_logs, funnel_sources, funnel_leads, funnel_events,"
            " funnel_conversions, funnel_attribution_credits RESTART IDENTITY CASCADE"
        )
        # No ANALYZE here: statistics of empty tables ("0 rows") would make the planner
        # scan instead of seek while they fill up; after TRUNCATE it estimates from size.
    finally:
        await conn.close()


async def prepare(url: str) -> None:
    await db.recreate(url)
    await db.migrate(url)


@contextlib.contextmanager
def fake_eventbrite(count: int, page_size: int) -> Iterator[str]:
    port = procs.free_port()
    procs.OUT.mkdir(exist_ok=True)
    log = (procs.OUT / "fake_eventbrite.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_eventbrite", str(port), str(count), str(page_size)],
        env=procs.child_env(),
        stdout=log,
        stderr=log,
        cwd=procs.ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        procs.wait_ready(base + "/health", proc)
        yield base + "/v3/"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def ours(url: str, base: str) -> dict[str, object]:
    result = procs.run_json("bench.sync_worker", url, base)
    if result["status"] != "success":
        raise RuntimeError(f"sync ended {result['status']}: {result['errors']}")
    return result


def dlt(url: str, base: str) -> dict[str, object]:
    workdir = tempfile.mkdtemp(prefix="bench-dlt-")
    try:
        return procs.run_json("bench.dlt_worker", db.plain(url), base, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def speed_run(url: str, p: Profile) -> dict[str, dict[str, float]]:
    with fake_eventbrite(p.sync_records, p.page_size) as base:
        asyncio.run(reset(url))
        theirs = dlt(url, base)
        asyncio.run(reset(url))
        mine = ours(url, base)
    if mine["records"] != p.sync_records or theirs["records"] != p.sync_records:
        raise RuntimeError(f"record counts differ: ours {mine}, dlt {theirs}")
    return {
        "sync_speed": {
            "ours": float(mine["seconds"]),  # type: ignore[arg-type]
            "baseline": float(theirs["seconds"]),  # type: ignore[arg-type]
        }
    }


def rss_run(url: str, p: Profile) -> dict[str, dict[str, float]]:
    sizes = {}
    for count in (p.sync_small, p.sync_large):
        with fake_eventbrite(count, p.rss_page_size) as base:
            asyncio.run(reset(url))
            result = ours(url, base)
            sizes[count] = float(result["maxrss_kb"]) / 1024  # type: ignore[arg-type]
    return {"sync_rss": {"ours": sizes[p.sync_large], "baseline": sizes[p.sync_small]}}
