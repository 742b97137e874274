"""HTTP for connectors: timeouts, bounded retries with back-off and jitter, Retry-After, pacing.

Every connector talks to its API through ``SourceHttp`` so that all of them classify
failures the same way (see ``sources.errors``) and honour the source's rate limits.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from signup_sync.logs import get_logger
from signup_sync.outbound import OutboundRefused, guarded_client
from signup_sync.sources.base import RetryPolicy, SourceContext
from signup_sync.sources.errors import (
    CredentialsRefused,
    FatalSourceError,
    RetriableSourceError,
)

log = get_logger("signup_sync.sources.http")

# The largest page a connector asks for (EasyAppointments, 1,000 appointments) is ~2 MB;
# past this a page is hostile or broken, and reading on would only grow memory.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_rate_limit_reset(headers: httpx.Headers) -> float | None:
    """Seconds until a ``X-RateLimit-Reset`` / ``RateLimit-Reset`` (epoch or delta)."""
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        raw = headers.get(name)
        if raw and raw.replace(".", "", 1).isdigit():
            value = float(raw)
            # Epoch seconds are large; small numbers are a delta.
            return max(0.0, value - time.time()) if value > 1e9 else value
    return None


class _Wait:
    """Honour the source's Retry-After when it gave one, else capped exponential jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = wait_random_exponential(
            multiplier=policy.base_seconds, max=policy.max_backoff_seconds
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            seconds = min(float(asked), self.policy.max_retry_after_seconds)
        else:
            seconds = float(self.backoff(state))
        return seconds * self.policy.wait_scale


def classify(response: httpx.Response, what: str) -> None:
    """Raise the error class a status deserves; return for 2xx/3xx."""
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is None:
            wait = parse_rate_limit_reset(response.headers)
        raise RetriableSourceError(f"{what}: rate limited (429)", retry_after=wait)
    if status >= 500 or status == 408:
        raise RetriableSourceError(f"{what}: server error {status}")
    if status in (401, 403):
        raise CredentialsRefused(
            f"{what}: not authorised ({status}); check the source's credentials"
        )
    raise FatalSourceError(f"{what}: HTTP {status}")


def _why(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Why a body is not JSON, without quoting it (it may hold personal data)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8 at byte {bad.start}"
    if not body.strip():
        return "empty body"
    return f"not valid JSON at byte {exc.pos} of {len(body)}"


class SourceHttp:
    """An httpx client with the engine's retry policy; one per connector run."""

    def __init__(
        self,
        ctx: SourceContext,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        min_interval_seconds: float = 0.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.policy = ctx.retry
        self.min_interval = min_interval_seconds
        self.max_response_bytes = max_response_bytes
        self._last_request = 0.0
        self.requests = 0
        # Every connection passes the outbound policy (redirect hops included).
        self.client = guarded_client(
            ctx.access.outbound,
            transport=ctx.transport,
            base_url=base_url,
            auth=auth,
            headers={
                "User-Agent": "signup-sync/0.1",
                "Accept": "application/json",
                **(headers or {}),
            },
            timeout=httpx.Timeout(self.policy.timeout_seconds),
            follow_redirects=True,
            max_redirects=5,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _pace(self) -> None:
        if self.min_interval <= 0:
            return
        wait = self._last_request + self.min_interval * self.policy.wait_scale - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    async def _once(
        self, method: str, url: str, what: str, **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        await self._pace()
        self.requests += 1
        deadline = self.policy.request_deadline_seconds
        try:
            async with asyncio.timeout(deadline):
                return await self._read(method, url, what, **kwargs)
        except TimeoutError:
            raise RetriableSourceError(
                f"{what}: no complete answer within {deadline:g} s"
            ) from None
        except httpx.TooManyRedirects:
            raise FatalSourceError(f"{what}: too many redirects") from None
        except OutboundRefused as exc:
            raise FatalSourceError(f"{what}: refused: {exc}") from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise RetriableSourceError(f"{what}: {type(exc).__name__}") from None

    async def _read(
        self, method: str, url: str, what: str, **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        async with self.client.stream(method, url, **kwargs) as response:
            classify(response, what)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > self.max_response_bytes:
                    raise FatalSourceError(
                        f"{what}: response larger than {self.max_response_bytes} bytes"
                    )
            return response, bytes(body)

    def _retrying(self, what: str) -> AsyncRetrying:
        return AsyncRetrying(
            stop=(
                stop_after_attempt(self.policy.attempts)
                | stop_after_delay(self.policy.max_total_seconds)
            ),
            wait=_Wait(self.policy),
            retry=retry_if_exception_type(RetriableSourceError),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "source_retry",
                what=what,
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
        )

    async def request(
        self, method: str, url: str, *, what: str = "", **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        """Send with retries; returns the final response and its body."""
        what = what or f"{method} {url}"
        async for attempt in self._retrying(what):
            with attempt:
                return await self._once(method, url, what, **kwargs)
        raise AssertionError("unreachable")

    async def get_json(self, url: str, *, what: str = "", **kwargs: Any) -> Any:
        """GET and decode JSON with retries; a body that is not JSON is a malformed page."""
        what = what or f"GET {url}"
        async for attempt in self._retrying(what):
            with attempt:
                _, body = await self._once("GET", url, what, **kwargs)
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise RetriableSourceError(
                        f"{what}: malformed page ({_why(body, exc)})"
                    ) from None
        raise AssertionError("unreachable")
