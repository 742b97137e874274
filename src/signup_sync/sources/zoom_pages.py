"""Where a Zoom sync is: paging within a list, and progress across lists, items and runs.

List paging: ``page_size`` + ``next_page_token`` (empty string on the last page).

A token handed back twice is a loop (PaginationLoopError). An expired or invalid token
(HTTP 400, code 300; tokens live 15 minutes) restarts the listing once from the top, as
source-apis.md §2.9 advises; re-reading is harmless because ingestion is idempotent.
A page of the wrong shape is fetched again with back-off, then reported as malformed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from signup_sync.sources.base import RetryPolicy
from signup_sync.sources.errors import PaginationLoopError, RetriableSourceError
from signup_sync.sources.http import SourceHttp
from signup_sync.sources.zoom_auth import INVALID_FIELD_CODE, ZoomApiError

CURSOR_VERSION = 1


class ZoomPager:
    def __init__(self, http: SourceHttp, policy: RetryPolicy, page_size: int) -> None:
        self.http = http
        self.policy = policy
        self.page_size = min(page_size, 300)
        # Sum of total_records over the listings counted (``pages(..., add_total=True)``);
        # None until one reports it.
        self.known_total: int | None = None

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
        self,
        path: str,
        key: str,
        params: dict[str, Any],
        what: str,
        *,
        numbered: bool = False,
        add_total: bool = False,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], bool]]:
        """Yield ``(rows, is_last)`` per page of the list under ``key``.

        ``numbered``: the endpoint may page only by the deprecated ``page_number`` (a host's
        webinar list); follow ``page_number < page_count`` when no token is given.
        """
        token, number = "", 0
        seen: set[str] = set()
        restarted = False
        while True:
            query = {**params, "page_size": self.page_size}
            if token:
                query["next_page_token"] = token
            elif number:
                query["page_number"] = number
            try:
                data = await self._fetch(path, query, what, key)
            except ZoomApiError as exc:
                if exc.code == INVALID_FIELD_CODE and token and not restarted:
                    restarted, token = True, ""
                    seen.clear()
                    continue
                raise
            total = data.get("total_records")
            if add_total and isinstance(total, int) and not isinstance(total, bool):
                add_total = False  # once per listing, also when a stale token restarts it
                self.known_total = (self.known_total or 0) + max(total, 0)
            following = data.get("next_page_token") or ""
            if following and following in seen:
                raise PaginationLoopError(f"{what}: next_page_token repeated; stopping")
            seen.add(following)
            next_number = 0
            if numbered and not following:
                page, count = data.get("page_number"), data.get("page_count")
                if number and page != number:
                    raise PaginationLoopError(f"{what}: page_number {number} was ignored")
                if isinstance(page, int) and isinstance(count, int) and page < count:
                    next_number = page + 1
            rows: list[dict[str, Any]] = data[key]
            last = not following and not next_number
            yield rows, last
            if last:
                return
            token, number = following, next_number


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


def encode_uuid(uuid: str) -> str:
    """Path segment for an instance UUID: Zoom wants it double-encoded if it starts with
    ``/`` or contains ``//``, else encoded once."""
    once = quote(uuid, safe="")
    return quote(once, safe="") if uuid.startswith("/") or "//" in uuid else once


class Progress:
    """The cursor: per-item state across runs plus the unfinished pass, as plain JSON."""

    def __init__(self, cursor: Mapping[str, Any] | None, window: list[str | None]) -> None:
        raw = dict(cursor) if cursor and cursor.get("v") == CURSOR_VERSION else {}
        # An unfinished pass is resumed only by a run over the same backfill window.
        self.window = window
        self.items: dict[str, dict[str, Any]] = {
            key: {
                "registrants_read_at": value.get("registrants_read_at"),
                "instances_done": list(value.get("instances_done") or []),
            }
            for key, value in (raw.get("items") or {}).items()
        }
        run = raw.get("pass") or {}
        if run.get("window", [None, None]) != window:
            run = {}
        self.items_done: list[str] = list(run.get("items_done") or [])
        self.current: str | None = run.get("item")
        self.lists_done: list[str] = list(run.get("lists_done") or [])
        self.complete = False

    def item(self, key: str) -> dict[str, Any]:
        return self.items.setdefault(key, {"registrants_read_at": None, "instances_done": []})

    def start_item(self, key: str) -> None:
        if self.current != key:
            self.current, self.lists_done = key, []

    def finish_item(self, key: str) -> None:
        self.items_done.append(key)
        self.current, self.lists_done = None, []

    def finish_pass(self, keep: set[str]) -> None:
        self.items = {k: v for k, v in self.items.items() if k in keep}
        self.items_done, self.current, self.lists_done = [], None, []
        self.complete = True

    def dump(self) -> dict[str, Any]:
        run = None
        if not self.complete:
            # Copies: the engine may hold this dict while the pass moves on.
            run = {
                "items_done": list(self.items_done),
                "item": self.current,
                "lists_done": list(self.lists_done),
                "window": list(self.window),
            }
        return {
            "v": CURSOR_VERSION,
            "items": {
                k: {**v, "instances_done": list(v["instances_done"])} for k, v in self.items.items()
            },
            "pass": run,
        }
