"""Zoom list paging: ``page_size`` + ``next_page_token`` (empty string on the last page).

A token handed back twice is a loop (PaginationLoopError). An expired or invalid token
(HTTP 400, code 300; tokens live 15 minutes) restarts the listing once from the top, as
source-apis.md §2.9 advises; re-reading is harmless because ingestion is idempotent.
A page of the wrong shape is fetched again with back-off, then reported as malformed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from signup_sync.sources.base import RetryPolicy
from signup_sync.sources.errors import PaginationLoopError, RetriableSourceError
from signup_sync.sources.http import SourceHttp
from signup_sync.sources.zoom_auth import INVALID_FIELD_CODE, ZoomApiError


class ZoomPager:
    def __init__(self, http: SourceHttp, policy: RetryPolicy, page_size: int) -> None:
        self.http = http
        self.policy = policy
        self.page_size = min(page_size, 300)

    async def _fetch(
        self, path: str, params: dict[str, Any], what: str, key: str | None
    ) -> dict[str, Any]:
        problem = ""
        for attempt in range(1, self.policy.attempts + 1):
            data = await self.http.get_json(path, params=params, what=what)
            problem = _shape_problem(data, key)
            if not problem:
                return dict(data)
            if attempt < self.policy.attempts:
                backoff = min(self.policy.base_seconds * 2 ** (attempt - 1), 30.0)
                await asyncio.sleep(backoff * self.policy.wait_scale)
        raise RetriableSourceError(f"{what}: malformed page ({problem})")

    async def get_object(
        self, path: str, what: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One JSON object (a webinar, the instance list, the tracking sources)."""
        return await self._fetch(path, params or {}, what, None)

    async def pages(
        self, path: str, key: str, params: dict[str, Any], what: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], bool]]:
        """Yield ``(rows, is_last)`` per page of the list under ``key``."""
        token = ""
        seen: set[str] = set()
        restarted = False
        while True:
            query = {**params, "page_size": self.page_size}
            if token:
                query["next_page_token"] = token
            try:
                data = await self._fetch(path, query, what, key)
            except ZoomApiError as exc:
                if exc.code == INVALID_FIELD_CODE and token and not restarted:
                    restarted, token = True, ""
                    seen.clear()
                    continue
                raise
            following = data.get("next_page_token") or ""
            if following and following in seen:
                raise PaginationLoopError(f"{what}: next_page_token repeated; stopping")
            seen.add(following)
            rows: list[dict[str, Any]] = data[key]
            yield rows, not following
            if not following:
                return
            token = following


def _shape_problem(data: Any, key: str | None) -> str:
    if not isinstance(data, dict):
        return "expected a JSON object"
    if key is None:
        return ""
    rows = data.get(key)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return f"expected a list of objects under {key!r}"
    if not isinstance(data.get("next_page_token", ""), str):
        return "next_page_token is not a string"
    return ""
