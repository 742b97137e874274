"""The baselines' FastAPI app: validate the same body, do one INSERT through asyncpg.

Served exactly like the service (uvicorn, uvloop, httptools, same worker count), so the
ratio measures what the service does beyond "parse, validate, insert one row".
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from signup_sync.events.schemas import EventIn

TABLE = "bench_baseline_events"
INSERT = f"""INSERT INTO {TABLE} (lead_id, source_type, event_type, stage, status, occurred_at,
    external_id, utm_source, utm_medium, utm_campaign, metadata, created_at)
    VALUES (0, $1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10) RETURNING id"""


def create_app() -> FastAPI:
    url = os.environ["BENCH_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(url, min_size=4, max_size=20)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/funnel/event", status_code=201)
    async def track(body: EventIn, request: Request) -> Response:
        now = datetime.now(UTC)
        event_id = await request.app.state.pool.fetchval(
            INSERT,
            body.source_type.value,
            body.event_type.value,
            int(body.event_type.stage),
            body.occurred_at or now,
            body.external_id,
            body.utm_source,
            body.utm_medium,
            body.utm_campaign,
            orjson.dumps(body.metadata).decode() if body.metadata is not None else None,
            now,
        )
        return Response(orjson.dumps({"event_id": event_id}), 201, media_type="application/json")

    return app
