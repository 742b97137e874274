"""Our side of the sync benchmark: one Eventbrite sync through ``run_sync``, real HTTP.

``python -m bench.sync_worker DATABASE_URL BASE_URL`` prints JSON: seconds (the sync only),
records, status, peak RSS of this process (ru_maxrss) and the leads/events it stored.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import orjson

import bench  # noqa: F401 - puts this checkout on sys.path
from bench.fake_eventbrite import ORGANIZATION_ID, TOKEN


async def main(url: str, base_url: str) -> None:
    from sqlalchemy import func, select

    from signup_sync.db.models import FunnelEvent, FunnelSource, Lead
    from signup_sync.db.session import create_engine, create_session_factory
    from signup_sync.settings import load_settings
    from signup_sync.sync.runner import run_sync
    from signup_sync.sync.schemas import SyncOptions

    os.environ["SIGNUP_SYNC_SOURCE_BENCH_EVENTBRITE_TOKEN"] = TOKEN
    # The fake Eventbrite listens on 127.0.0.1, which the outbound policy refuses by default.
    settings = load_settings(database_url=url, log_level="warning", outbound_allow="127.0.0.0/8")
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    async with factory() as session:
        source = FunnelSource(
            source_type="eventbrite",
            name="bench",
            config={
                "base_url": base_url,
                "organization_id": ORGANIZATION_ID,
                "token_env": "SIGNUP_SYNC_SOURCE_BENCH_EVENTBRITE_TOKEN",
            },
        )
        session.add(source)
        await session.commit()
        source_id = source.id
    started = time.perf_counter()
    result = await run_sync(factory, source_id, SyncOptions(force=True), settings=settings)
    seconds = time.perf_counter() - started
    async with factory() as session:
        leads = (await session.execute(select(func.count()).select_from(Lead))).scalar_one()
        events = (await session.execute(select(func.count()).select_from(FunnelEvent))).scalar()
    await engine.dispose()
    out = {
        "seconds": seconds,
        "records": result.leads_processed,
        "status": result.status,
        "errors": result.error_messages[:3],
        "leads": leads,
        "events": events,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    # The service runs API-triggered and scheduled syncs on uvicorn's loop: uvloop.
    import uvloop

    uvloop.run(main(sys.argv[1], sys.argv[2]))
