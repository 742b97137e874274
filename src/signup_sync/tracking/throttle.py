"""The browser rate limit of public write keys: fixed one-minute windows counted in the database.

Process memory would let each worker and replica allow the full rate; a row per counted thing
(``funnel_rate_counters``) is shared by all of them. One request costs one statement: a
multi-row upsert that adds a hit to the key's counter and to the client address's counter
and returns both counts. It runs in its own autocommitted statement, never in the request's
transaction, so the key's hot row is locked for that statement only. Client addresses are
stored as a truncated SHA-256 (pseudonymous, pruned after an hour), never in clear.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import rate_counters
from signup_sync.errors import RateLimited

WINDOW_SECONDS = 60
KEEP_SECONDS = 3600
PRUNE_ONE_IN = 1000  # requests; pruning is a rare second statement, not one per request


@dataclass(frozen=True, slots=True)
class Limits:
    per_key: int  # requests per window; 0 = unlimited
    per_address: int

    @property
    def enabled(self) -> bool:
        return self.per_key > 0 or self.per_address > 0


def key_bucket(write_key_id: str) -> str:
    return f"key:{write_key_id}"


def address_bucket(address: str) -> str:
    return "addr:" + hashlib.sha256(address.encode()).hexdigest()[:40]


def _upsert(dialect: str, rows: list[dict[str, Any]]) -> Any:
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(rate_counters).values(rows)
    same_window = rate_counters.c.window_start >= stmt.excluded.window_start
    return stmt.on_conflict_do_update(
        index_elements=["bucket"],
        set_={
            "hits": case((same_window, rate_counters.c.hits + 1), else_=1),
            "window_start": case(
                (same_window, rate_counters.c.window_start), else_=stmt.excluded.window_start
            ),
        },
    ).returning(rate_counters.c.bucket, rate_counters.c.hits)


async def count(engine: AsyncEngine, buckets: list[str], window_start: int) -> dict[str, int]:
    """Add one hit to each bucket in the current window; the counts after it."""
    rows = [{"bucket": b, "window_start": window_start, "hits": 1} for b in sorted(buckets)]
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        result = await conn.execute(_upsert(engine.dialect.name, rows))
        counts = {str(bucket): int(hits) for bucket, hits in result.all()}
        if random.randrange(PRUNE_ONE_IN) == 0:  # noqa: S311 - not security-relevant
            await conn.execute(
                delete(rate_counters).where(
                    rate_counters.c.window_start < window_start - KEEP_SECONDS
                )
            )
    return counts


async def check(
    engine: AsyncEngine,
    limits: Limits,
    write_key_id: str,
    address: str | None,
    clock: Callable[[], float] = time.time,
) -> None:
    """RateLimited (429 + Retry-After to the window's end) when a limit is exceeded."""
    if not limits.enabled:
        return
    now = clock()
    window_start = int(now // WINDOW_SECONDS * WINDOW_SECONDS)
    wanted: dict[str, int] = {}
    if limits.per_key:
        wanted[key_bucket(write_key_id)] = limits.per_key
    if limits.per_address and address:
        wanted[address_bucket(address)] = limits.per_address
    if not wanted:
        return
    counts = await count(engine, list(wanted), window_start)
    over = [bucket for bucket, limit in wanted.items() if counts.get(bucket, 0) > limit]
    if not over:
        return
    wait = max(1, math.ceil(window_start + WINDOW_SECONDS - now))
    what = "this write key" if over[0].startswith("key:") else "this client address"
    raise RateLimited(
        f"Too many tracking requests from {what}: at most {wanted[over[0]]} a minute; "
        f"retry in {wait} s",
        retry_after=wait,
    )
