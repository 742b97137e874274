"""What a /v1 call passes after its write key is known: the key's origins, then its rate limit.

Both run before the body's messages are read, so a refused call stores nothing. A call
without an ``Origin`` header (a server-side client) skips the origin check; the rate limit
applies to every call with a public key, since leaving the header out is easy for a script.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from signup_sync.errors import DomainError, RateLimited
from signup_sync.metrics import RATE_LIMITED
from signup_sync.tracking import throttle
from signup_sync.tracking.config import TrackingConfig, WriteKey


class OriginRefused(DomainError):
    """403: dropped by the SDKs (retrying from the same page cannot help)."""

    status_code = 403
    code = "origin_not_allowed"

    def body(self) -> dict[str, Any]:
        return {**super().body(), "code": self.code, "message": self.message}


async def admit(request: Request, config: TrackingConfig, key: WriteKey) -> None:
    """OriginRefused or RateLimited (429 + Retry-After), else nothing."""
    origin = request.headers.get("origin")
    if origin is not None and not config.origin_allowed(key, origin):
        raise OriginRefused(
            "This write key does not allow calls from this origin; add it to the key's "
            "origins in SEGMENT_WRITE_KEYS (KEY@https://www.example.com|*.example.com)",
            field="Origin",
        )
    if not key.public:
        return
    limits: throttle.Limits = request.app.state.tracking_limits
    address = request.client.host if request.client else None
    try:
        await throttle.check(request.app.state.engine, limits, key.id, address)
    except RateLimited:
        RATE_LIMITED.labels("/v1").inc()
        raise
