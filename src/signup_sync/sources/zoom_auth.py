"""Zoom transport details: Server-to-Server OAuth as an ``httpx.Auth`` and Zoom's error codes.

``ZoomOAuth`` fetches an account token (``grant_type=account_credentials``), caches it until
shortly before it expires and, when the API answers 401 (code 124, invalid/expired token),
fetches a new one and re-sends once. ``zoom_response_hook`` turns Zoom's JSON error bodies
and rate-limit headers into our error classes before ``SourceHttp`` classifies the status.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from signup_sync.sources.base import RetryPolicy
from signup_sync.sources.errors import (
    CredentialsRefused,
    FatalSourceError,
    RetriableSourceError,
)
from signup_sync.sources.http import parse_rate_limit_reset, parse_retry_after

# Zoom's SDK refreshes a token when 60 s or less remain.
REFRESH_MARGIN_SECONDS = 60.0
INVALID_TOKEN_CODE = 124
INVALID_FIELD_CODE = 300  # also an invalid/expired next_page_token
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
NOT_FOUND_CODES = frozenset({3001, 1001, 12702})  # meeting/webinar, user, report older than a year


class ZoomApiError(FatalSourceError):
    """A Zoom 4xx with its numeric ``code`` (messages carry the code, never Zoom's text)."""

    def __init__(self, message: str, *, status: int, code: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ZoomNotFound(ZoomApiError):
    """The meeting, webinar, user or report does not exist (any more) or is too old."""


class ZoomOAuth(httpx.Auth):
    """Server-to-Server OAuth: one cached bearer token, refreshed once on a 401."""

    def __init__(
        self, *, token_url: str, account_id: str, client_id: str, client_secret: str
    ) -> None:
        self.token_url = token_url
        self._account_id = account_id
        self._basic = httpx.BasicAuth(client_id, client_secret)
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("ZoomOAuth is async only")

    def _token_request(self) -> httpx.Request:
        request = httpx.Request(
            "POST",
            self.token_url,
            data={"grant_type": "account_credentials", "account_id": self._account_id},
            headers={"Accept": "application/json"},
        )
        # BasicAuth's flow only sets the header: take the request it yields.
        return next(self._basic.auth_flow(request))

    def _fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    async def _store(self, response: httpx.Response) -> None:
        await response.aread()
        status = response.status_code
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("retry-after"))
            raise RetriableSourceError(f"Zoom token endpoint: HTTP {status}", retry_after=wait)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if status >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            # Only an OAuth error code from RFC 6749's list is repeated, never Zoom's text.
            error = body.get("error") if isinstance(body, dict) else None
            code = f", {error}" if error in OAUTH_ERRORS else ""
            refused = CredentialsRefused if status >= 400 else FatalSourceError
            raise refused(
                f"Zoom token request refused (HTTP {status}{code}); "
                "check the account id, client id and client secret"
            )
        expires_in = float(body.get("expires_in") or 3600)
        self._token = str(body["access_token"])
        self._expires_at = time.monotonic() + max(0.0, expires_in - REFRESH_MARGIN_SECONDS)
        self.tokens_fetched += 1

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._fresh():
            await self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code != 401:
            return
        # Expired or revoked before its time (code 124): one new token, one more try.
        self._token = None
        await self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def _iso_seconds(value: str | None, now: datetime) -> float | None:
    """Zoom's daily-limit ``Retry-After`` is an ISO timestamp such as ``2024-06-13T00:00:00Z``."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def rate_limit_wait(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Seconds a 429 asks us to wait: Retry-After (seconds, HTTP date or ISO), reset, daily."""
    now = now or datetime.now(UTC)
    raw = headers.get("retry-after")
    wait = parse_retry_after(raw, now=now)
    if wait is None:
        wait = _iso_seconds(raw, now)
    if wait is None:
        wait = parse_rate_limit_reset(headers)
    if wait is None and headers.get("x-ratelimit-type", "").lower() == "daily-limit":
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        wait = (midnight - now).total_seconds()
    return wait


def zoom_response_hook(
    policy: RetryPolicy, token_url: str
) -> Callable[[httpx.Response], Coroutine[Any, Any, None]]:
    """An httpx response hook raising our errors for Zoom's 429s and coded 4xx bodies."""

    token = httpx.URL(token_url).copy_with(query=None)

    async def hook(response: httpx.Response) -> None:
        status = response.status_code
        if (
            response.request.url.copy_with(query=None) == token
            or status < 400
            or status
            in (
                401,
                403,
            )
        ):
            return  # token answers are ZoomOAuth's; 401/403 are the auth flow's and classify's
        if status >= 500:
            return  # SourceHttp.classify retries these
        if status == 429:
            wait = rate_limit_wait(response.headers)
            category = response.headers.get("x-ratelimit-category", "unknown")
            daily = response.headers.get("x-ratelimit-type", "").lower() == "daily-limit"
            if daily and wait is not None and wait > policy.max_retry_after_seconds:
                raise FatalSourceError(
                    f"Zoom daily rate limit reached ({category} requests); "
                    f"resume after {int(wait)} s (next run continues from the cursor)"
                )
            raise RetriableSourceError(f"Zoom rate limit (429, {category})", retry_after=wait)
        await response.aread()
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        code = body.get("code") if isinstance(body, dict) else None
        code = code if isinstance(code, int) else None
        message = f"Zoom error {code if code is not None else 'without code'} (HTTP {status})"
        if status == 404 or code in NOT_FOUND_CODES:
            raise ZoomNotFound(message, status=status, code=code)
        raise ZoomApiError(message, status=status, code=code)

    return hook
