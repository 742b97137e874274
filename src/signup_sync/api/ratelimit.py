"""Per-token rate limit on ingestion: a token bucket per token hash, in this process.

Off unless INGEST_RATE_LIMIT_PER_SECOND > 0. Each request costs one token (a batch too);
a bucket holds up to INGEST_RATE_LIMIT_BURST. The buckets live in process memory, so the
limit applies per process: with N workers or replicas a token may send N times the rate.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from signup_sync.errors import RateLimited
from signup_sync.metrics import RATE_LIMITED

# Buckets kept at most; beyond, the idlest are forgotten (they were full anyway, or nearly).
MAX_BUCKETS = 10_000

RATE_LIMIT_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many requests for this token (INGEST_RATE_LIMIT_PER_SECOND); "
        "retry after `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


class TokenBuckets:
    """``take(key)`` → 0 when allowed, else the seconds until one request would be."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self.clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        if wait == 0.0:
            tokens -= 1
        self._buckets[key] = (tokens, now)  # re-inserted last: dict order = least recent first
        if len(self._buckets) > MAX_BUCKETS:
            del self._buckets[next(iter(self._buckets))]
        return wait


def make_limiter(rate: float, burst: int) -> TokenBuckets | None:
    return TokenBuckets(rate, burst) if rate > 0 else None


async def limit_ingestion(request: Request) -> None:
    """Runs after the token check; keyed by a hash of the token, never the token itself."""
    limiter: TokenBuckets | None = getattr(request.app.state, "ingest_limiter", None)
    if limiter is None:
        return
    key = hashlib.sha256(request.headers.get("authorization", "").encode()).hexdigest()
    wait = limiter.take(key)
    if wait <= 0:
        return
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    RATE_LIMITED.labels(route).inc()
    seconds = max(1, math.ceil(wait))
    raise RateLimited(
        f"Too many requests for this token: at most {limiter.rate:g} per second "
        f"(bursts of {limiter.burst:g}); retry in {seconds} s",
        retry_after=seconds,
    )


IngestLimit = Depends(limit_ingestion)
