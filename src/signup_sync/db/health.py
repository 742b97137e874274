"""Database liveness probe with a hard timeout."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def ping(engine: AsyncEngine, limit_seconds: float) -> float:
    """Run ``SELECT 1``; return the latency in ms, or raise (TimeoutError past the limit)."""
    started = time.perf_counter()

    async def _select() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async with asyncio.timeout(limit_seconds):
        await _select()
    return round((time.perf_counter() - started) * 1000, 2)
