"""Database liveness probe with a hard timeout, and whether the schema is behind the code."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db import migrate


async def ping(engine: AsyncEngine, limit_seconds: float) -> float:
    """Run ``SELECT 1``; return the latency in ms, or raise (TimeoutError past the limit)."""
    started = time.perf_counter()

    async def _select() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async with asyncio.timeout(limit_seconds):
        await _select()
    return round((time.perf_counter() - started) * 1000, 2)


@functools.cache
def _shipped() -> tuple[str | None, frozenset[str]]:
    """The head revision of this code and every revision it knows (read once per process)."""
    return migrate.head_revision(), frozenset(migrate.known_revisions())


@dataclass(frozen=True, slots=True)
class SchemaState:
    current: str | None
    head: str | None

    @property
    def behind(self) -> bool:
        """At an older revision this code knows, or none at all (an empty database). A
        revision this code does not know is newer (a replica of the next release migrated):
        not behind."""
        if self.current == self.head:
            return False
        return self.current is None or self.current in _shipped()[1]

    def describe(self) -> str:
        current = self.current or "none (no tables)"
        return f"schema at {current}, needs {self.head}; run `signup-sync db upgrade`"


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """The database's revision against the head this code ships."""
    return SchemaState(await migrate.current_revision(engine), _shipped()[0])
