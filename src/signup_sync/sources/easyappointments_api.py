"""EasyAppointments REST API v1 reader: pages of flat appointment records and their cursor.

The API has no updated-since filter: each run re-reads a date window (``from=today-N``, ids
up to the high-water mark) to catch status changes and newly past appointments, then reads
rows above the id high-water mark (``sort=id`` ascending). Customers come attached to each
appointment (``with=customer,service,provider``, EA >= 1.5); for servers that ignore
``with`` they are fetched one by one into a bounded per-run LRU. When due, an id-only scan
finds deletions (``easyappointments_deletions``).
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx

from signup_sync.sources.base import Page, SourceContext
from signup_sync.sources.easyappointments_config import EasyAppointmentsConfig, secret, zone
from signup_sync.sources.easyappointments_deletions import api_deletions, check_due
from signup_sync.sources.easyappointments_records import appointment_record, int_of, text_of
from signup_sync.sources.errors import (
    FatalSourceError,
    PaginationLoopError,
    RetriableSourceError,
)
from signup_sync.sources.http import SourceHttp


class _NotFound(FatalSourceError):
    """A 404 (EA answers with an empty body): fatal for a list, 'deleted' for one customer."""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rows(data: Any, what: str) -> list[dict[str, Any]]:
    ok = isinstance(data, list) and all(
        isinstance(r, dict) and type(r.get("id")) is int for r in data
    )
    if not ok:
        raise RetriableSourceError(f"{what}: malformed page (expected a JSON array of records)")
    return data  # type: ignore[no-any-return]


class ApiReader:
    """Pages of flat appointment records from the REST API, with the cursor to store."""

    def __init__(self, ctx: SourceContext, config: EasyAppointmentsConfig) -> None:
        self.ctx, self.config = ctx, config
        auth: httpx.Auth | None = None
        headers: dict[str, str] = {}
        if config.auth == "basic":
            user = secret(ctx, "username", config.username_env)
            auth = httpx.BasicAuth(user, secret(ctx, "password", config.password_env))
        else:
            headers["Authorization"] = f"Bearer {secret(ctx, 'api_token', config.api_token_env)}"
        self.http = SourceHttp(
            ctx,
            base_url=config.base_url,
            auth=auth,
            headers=headers,
            min_interval_seconds=config.min_interval_seconds,
        )
        self.http.client.event_hooks["response"].append(self._on_response)
        self.customers: OrderedDict[int, dict[str, Any] | None] = OrderedDict()
        self.services: dict[int, str] | None = None
        self.zones: dict[int, str] | None = None

    async def _on_response(self, response: httpx.Response) -> None:
        what = f"{response.request.method} {response.request.url.path}"
        # EA's limiter answers a bare 429: wait for its fixed window, not a short back-off.
        if response.status_code == 429 and "retry-after" not in response.headers:
            raise RetriableSourceError(
                f"{what}: rate limited (429); waiting for EA's limiter window",
                retry_after=self.config.rate_limit_window_seconds,
            )
        if response.status_code == 404:
            raise _NotFound(f"{what}: HTTP 404 (not found); check base_url")

    async def _list(self, resource: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        what = f"GET {resource} page {params['page']}"
        return _rows(await self.http.get_json(resource, params=params, what=what), what)

    async def _scan(
        self, params: dict[str, Any], page: int, last_id: int, upto: int | None = None
    ) -> AsyncIterator[tuple[list[dict[str, Any]], int, int, bool]]:
        """Ascending-id scan from the page holding ``last_id``: (new rows, page, last id, done).

        Deleted rows move later ones to earlier pages, so a resumed scan steps back until
        its page starts at or before ``last_id``.
        """
        length = self.config.page_length
        anchored, advanced = page <= 1, False
        while True:
            query = {**params, "page": page, "length": length, "sort": "id"}
            if self.config.use_with:
                query["with"] = "customer,service,provider"
            rows = await self._list("appointments", query)
            ids = [r["id"] for r in rows]
            if ids != sorted(ids):
                raise RetriableSourceError(f"appointments page {page}: malformed page (not sorted)")
            if not anchored and page > 1 and (not ids or ids[0] > last_id):
                page -= 1
                continue
            anchored = True
            if advanced and ids and ids[-1] <= last_id:
                raise PaginationLoopError(f"appointments page {page} repeats rows already read")
            fresh = [r for r in rows if r["id"] > last_id and (upto is None or r["id"] <= upto)]
            last_id = max([last_id, *ids])
            done = len(rows) < length or (upto is not None and last_id >= upto)
            yield await self._records(fresh), page if ids else max(page - 1, 1), last_id, done
            if done:
                return
            page, advanced = page + 1, True

    async def pages(self) -> AsyncIterator[Page]:
        ctx, config = self.ctx, self.config
        if ctx.since is not None or ctx.until is not None:  # backfill: leave the cursor alone
            window: dict[str, Any] = {}
            if ctx.since is not None:
                window["from"] = ctx.since.date().isoformat()
            if ctx.until is not None:
                window["till"] = ctx.until.date().isoformat()
            async for records, page, _, _ in self._scan(window, 1, 0):
                yield Page(records=records, cursor=None, label=f"backfill page {page}")
            return
        stored = None if ctx.force else ctx.cursor
        state: dict[str, Any] = {"v": 1, "mode": "api", "phase": "new", "max_id": 0, "page": 1}
        if stored and stored.get("mode") == "api":
            state.update(
                {
                    k: stored[k]
                    for k in (
                        "phase",
                        "max_id",
                        "page",
                        "window_from",
                        "window_page",
                        "window_last_id",
                        "deletions_checked_at",
                    )
                    if k in stored
                }
            )
        # "new": a run died reading new rows (its window was read): finish those first.
        if stored and config.rescan_days is not None and state["phase"] in ("idle", "window"):
            if state["phase"] != "window":
                today = ctx.run_started_at.astimezone(zone(config.site_timezone)).date()
                start = today - timedelta(days=config.rescan_days)
                state.update(
                    phase="window", window_from=start.isoformat(), window_page=1, window_last_id=0
                )
            scan = self._scan(
                {"from": state["window_from"]},
                state["window_page"],
                state["window_last_id"],
                upto=state["max_id"],
            )
            async for records, page, last_id, done in scan:
                state.update(window_page=page, window_last_id=last_id)
                if done:
                    state["phase"] = "new"
                label = f"window from {state['window_from']} page {page}"
                yield Page(records=records, cursor=dict(state), label=label)
        state["phase"] = "new"
        async for records, page, last_id, done in self._scan({}, state["page"], state["max_id"]):
            state.update(page=page, max_id=last_id, phase="idle" if done else "new")
            yield Page(records=records, cursor=dict(state), label=f"appointments page {page}")
        if not stored:  # a first read: nothing stored before it can have been deleted
            state["deletions_checked_at"] = ctx.run_started_at.isoformat()
        if check_due(ctx, config.deletion_check_hours, state):
            async for gone in api_deletions(ctx, self.appointment_ids, state):
                yield gone

    async def appointment_ids(self) -> array[int]:
        """Every appointment id, ascending, by an id-only scan (``fields=id``)."""
        found: array[int] = array("q")
        length, page = self.config.id_scan_length, 1
        while True:
            query = {"page": page, "length": length, "sort": "id", "fields": "id"}
            ids = [r["id"] for r in await self._list("appointments", query)]
            if ids != sorted(ids):
                raise RetriableSourceError(f"appointments page {page}: malformed page (not sorted)")
            if found and ids and ids[0] <= found[-1]:
                raise PaginationLoopError(
                    f"appointments id scan page {page} repeats ids already read "
                    "(does the server ignore page?)"
                )
            found.extend(ids)
            if len(ids) < length:
                return found
            page += 1

    async def _records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            if "customer" in row:  # with=...: raw DB rows attached (values as strings)
                customer = _obj(row["customer"]) or None
                name = text_of(_obj(row.get("service")).get("name"))
                tz = text_of(_obj(row.get("provider")).get("timezone"))
            else:
                customer = await self.customer(int_of(row.get("customerId")))
                name = (await self._services()).get(int_of(row.get("serviceId")) or 0)
                tz = (await self._zones()).get(int_of(row.get("providerId")) or 0)
            out.append(
                appointment_record(row, customer=customer, service_name=name, provider_timezone=tz)
            )
        return out

    async def customer(self, customer_id: int | None) -> dict[str, Any] | None:
        """``GET customers/{id}`` through a bounded per-run cache; None when deleted."""
        if customer_id is None:
            return None
        if customer_id in self.customers:
            self.customers.move_to_end(customer_id)
            return self.customers[customer_id]
        try:
            data = await self.http.get_json(f"customers/{customer_id}", what="GET customers/{id}")
            found = data if isinstance(data, dict) else None
        except _NotFound:
            found = None
        self.customers[customer_id] = found
        if len(self.customers) > self.config.customer_cache_size:
            self.customers.popitem(last=False)
        return found

    async def _lookup(self, resource: str, key: str) -> dict[int, str]:
        found: dict[int, str] = {}
        page = 1
        while True:
            rows = await self._list(resource, {"page": page, "length": 100, "sort": "id"})
            found.update({r["id"]: v for r in rows if (v := text_of(r.get(key)))})
            if len(rows) < 100:
                return found
            page += 1

    async def _services(self) -> dict[int, str]:
        if self.services is None:
            self.services = await self._lookup("services", "name")
        return self.services

    async def _zones(self) -> dict[int, str]:
        if self.zones is None:
            self.zones = await self._lookup("providers", "timezone")
        return self.zones

    async def aclose(self) -> None:
        await self.http.aclose()
