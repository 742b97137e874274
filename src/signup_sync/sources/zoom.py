"""Zoom connector: webinar and meeting registrants and past-instance participants.

Per item (a configured webinar/meeting, or each one a configured host has), one pass reads:

1. registrants of every configured status (Zoom lists only ``approved`` unless asked), first
   per tracking source (the list response has no tracking data; ingestion keeps the first
   write, so attributed copies must come first), then unfiltered;
2. ``past_{webinars|meetings}/{id}/instances``, then the participants of each instance not
   fully read in an earlier run, collapsed to one record per person.

Zoom has no updated-since filter, so registrants are re-listed each run (only for items that
are upcoming or ended within ``relist_registrants_days``). The cursor keeps, per item, when its
registrants were last fully read and which instances are done, plus the progress of an
unfinished pass (items done, lists done in the current item) so a crash resumes there.
Mapping lives in ``zoom_records`` (shared with webhooks); OAuth and error codes in ``zoom_auth``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from signup_sync.events.records import EventRecord
from signup_sync.sources.base import Page, SourceConfig, SourceContext
from signup_sync.sources.errors import FatalSourceError
from signup_sync.sources.http import SourceHttp
from signup_sync.sources.secrets import require
from signup_sync.sources.zoom_auth import ZoomNotFound, ZoomOAuth, zoom_response_hook
from signup_sync.sources.zoom_pages import Progress, ZoomPager, encode_uuid
from signup_sync.sources.zoom_records import (
    MappingOptions,
    collapse_participants,
    linked_registrants,
    map_webhook_event,
    map_zoom_record,
    parse_time,
)

__all__ = ["ZoomConfig", "ZoomConnector", "encode_uuid", "map_webhook_event"]

RECURRING_TYPES = {"webinar": {6, 9}, "meeting": {3, 8}}
RegistrantStatus = Literal["approved", "pending", "denied"]
ALL_STATUSES: tuple[RegistrantStatus, ...] = ("approved", "pending", "denied")
UtmField = Literal["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]


class ZoomConfig(SourceConfig):
    base_url: str = "https://api.zoom.us/v2"
    token_url: str = "https://zoom.us/oauth/token"  # noqa: S105 - a URL, not a password
    # The account id is not a secret: set it here or name its variable.
    account_id: str | None = None
    account_id_env: str | None = "SIGNUP_SYNC_SOURCE_ZOOM_ACCOUNT_ID"
    client_id_env: str = "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID"
    client_secret_env: str = "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET"  # noqa: S105 - the variable's name
    webinar_ids: list[str] = Field(default_factory=list)
    meeting_ids: list[str] = Field(default_factory=list)
    # Hosts (user id or email) whose scheduled webinars (and meetings, if asked) are read.
    user_ids: list[str] = Field(default_factory=list)
    list_webinars: bool = True
    list_meetings: bool = False
    registrant_statuses: list[RegistrantStatus] = Field(
        default_factory=lambda: list(ALL_STATUSES), min_length=1
    )
    count_pending: bool = True
    tracking_sources: bool = True
    utm_questions: dict[str, UtmField] = Field(default_factory=dict)
    skip_internal_users: bool = True
    page_size: int = Field(300, ge=1, le=300)
    relist_registrants_days: int = Field(30, ge=0)
    # An instance counts as fully read once it ended this long before the run started.
    settle_hours: float = Field(6.0, ge=0)
    requests_per_second: float = Field(2.0, gt=0)  # Medium label on the free plan
    # The app's webhook "secret token" (signs x-zm-signature); None: webhooks refused.
    webhook_secret_env: str | None = None

    @field_validator("webinar_ids", "meeting_ids", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # Zoom ids exceed 2**31 and arrive as numbers or strings: keep them as text.
        return [str(v).strip() for v in value] if isinstance(value, list) else value

    @model_validator(mode="before")
    @classmethod
    def _account_id_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("account_id") and "account_id_env" not in data:
            data = {**data, "account_id_env": None}
        return data

    @model_validator(mode="after")
    def _something_to_read(self) -> ZoomConfig:
        if not (self.webinar_ids or self.meeting_ids or self.user_ids):
            raise ValueError("set webinar_ids, meeting_ids or user_ids")
        return self

    def mapping_options(self) -> MappingOptions:
        return MappingOptions(
            utm_questions=dict(self.utm_questions),
            count_pending=self.count_pending,
            skip_internal_users=self.skip_internal_users,
        )


@dataclass(frozen=True, slots=True)
class ZoomItem:
    kind: str  # "webinar" | "meeting"
    id: str
    topic: str | None
    start_time: datetime | None
    duration_minutes: int
    recurring: bool
    configured: bool

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def ref(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.topic}

    @classmethod
    def from_api(cls, kind: str, row: Mapping[str, Any], *, configured: bool) -> ZoomItem:
        kind_type = row.get("type")
        return cls(
            kind=kind,
            id=str(row.get("id")),
            topic=row.get("topic") or None,
            start_time=parse_time(row.get("start_time")),
            duration_minutes=int(row.get("duration") or 60),
            recurring=kind_type in RECURRING_TYPES[kind],
            configured=configured,
        )


class ZoomConnector:
    source_type: ClassVar[str] = "zoom"
    # Typed as the Protocol's (ClassVar members are invariant); the value is ZoomConfig.
    config_model: ClassVar[type[SourceConfig]] = ZoomConfig

    def __init__(self, ctx: SourceContext) -> None:
        if not isinstance(ctx.config, ZoomConfig):
            raise FatalSourceError("Zoom connector needs a ZoomConfig")
        self.ctx = ctx
        self.config: ZoomConfig = ctx.config
        self.options = self.config.mapping_options()
        self._http: SourceHttp | None = None
        self.auth: ZoomOAuth | None = None

    def _secret(self, name: str, env: str | None) -> str:
        return require(self.ctx.secrets, name, "Zoom", env)

    def _client(self) -> SourceHttp:
        if self._http is None:
            config = self.config
            account_id = config.account_id or self._secret("account_id", config.account_id_env)
            self.auth = ZoomOAuth(
                token_url=config.token_url,
                account_id=account_id,
                client_id=self._secret("client_id", config.client_id_env),
                client_secret=self._secret("client_secret", config.client_secret_env),
            )
            self._http = SourceHttp(
                self.ctx,
                base_url=config.base_url.rstrip("/") + "/",
                auth=self.auth,
                min_interval_seconds=1.0 / config.requests_per_second,
            )
            self._http.client.event_hooks["response"].append(
                zoom_response_hook(self.ctx.retry, config.token_url)
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def map_record(self, record: Any) -> list[EventRecord]:
        return map_zoom_record(record, self.options)

    # --- what to read -------------------------------------------------------------------

    def _in_window(self, when: datetime | None) -> bool:
        if when is None:
            return True
        if self.ctx.since is not None and when < self.ctx.since:
            return False
        return not (self.ctx.until is not None and when >= self.ctx.until)

    async def _items(self, pager: ZoomPager) -> list[ZoomItem]:
        items: dict[str, ZoomItem] = {}
        for kind, ids in (
            ("webinar", self.config.webinar_ids),
            ("meeting", self.config.meeting_ids),
        ):
            for item_id in ids:
                try:
                    row = await pager.get_object(
                        f"{kind}s/{quote(item_id, safe='')}", f"{kind} {item_id}"
                    )
                except ZoomNotFound:
                    raise FatalSourceError(
                        f"Zoom {kind} {item_id} not found; check {kind}_ids"
                    ) from None
                item = ZoomItem.from_api(kind, {**row, "id": item_id}, configured=True)
                items.setdefault(item.key, item)
        kinds = [
            k
            for k, on in (
                ("webinar", self.config.list_webinars),
                ("meeting", self.config.list_meetings),
            )
            if on
        ]
        for n, user in enumerate(self.config.user_ids, start=1):
            for kind in kinds:
                path = f"users/{quote(user, safe='')}/{kind}s"
                async for rows, _ in pager.pages(
                    path, f"{kind}s", {"type": "scheduled"}, f"{kind}s of user #{n}", numbered=True
                ):
                    for row in rows:
                        item = ZoomItem.from_api(kind, row, configured=False)
                        items.setdefault(item.key, item)
        return list(items.values())

    def _relist_registrants(self, item: ZoomItem, state: dict[str, Any]) -> bool:
        if state.get("registrants_read_at") is None or item.recurring or item.start_time is None:
            return True
        ended = item.start_time + timedelta(minutes=item.duration_minutes)
        return ended >= self.ctx.run_started_at - timedelta(
            days=self.config.relist_registrants_days
        )

    def _settled(self, item: ZoomItem, started: datetime | None) -> bool:
        if started is None:
            return False
        end = started + timedelta(minutes=item.duration_minutes, hours=self.config.settle_hours)
        return end <= self.ctx.run_started_at

    async def _registrants_of(self, item: ZoomItem, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Registrant id -> their lead's email, for the registrant ids on a participant page
        that name a stored registration (one look-up per page)."""
        return await linked_registrants(self.ctx.stored, item.ref(), rows)

    # --- the stream ---------------------------------------------------------------------

    async def pages(self) -> AsyncIterator[Page]:
        pager = ZoomPager(self._client(), self.ctx.retry, self.config.page_size)
        window = [w.isoformat() if w else None for w in (self.ctx.since, self.ctx.until)]
        progress = Progress(None if self.ctx.force else self.ctx.cursor, window)
        items = await self._items(pager)
        for item in items:
            if item.key in progress.items_done:
                continue
            progress.start_item(item.key)
            try:
                async for page in self._item_pages(pager, item, progress):
                    yield page
            except ZoomNotFound:
                if item.configured:
                    raise
                # Deleted between the host listing and now: nothing left to read.
            progress.finish_item(item.key)
        progress.finish_pass({item.key for item in items})
        yield Page(
            records=[], cursor=progress.dump(), label="zoom: pass complete", total=pager.known_total
        )

    async def _registrant_lists(
        self, pager: ZoomPager, item: ZoomItem
    ) -> list[tuple[str, dict[str, str], dict[str, Any] | None]]:
        sources: list[dict[str, Any]] = []
        if item.kind == "webinar" and self.config.tracking_sources:
            body = await pager.get_object(
                f"webinars/{item.id}/tracking_sources", f"tracking sources of webinar {item.id}"
            )
            found = body.get("tracking_sources")
            sources = (
                [s for s in found if isinstance(s, dict) and s.get("id")]
                if isinstance(found, list)
                else []
            )
        lists: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []
        for status in self.config.registrant_statuses:
            for source in sources:
                sid = str(source["id"])
                lists.append(
                    (f"ts:{sid}:{status}", {"status": status, "tracking_source_id": sid}, source)
                )
            lists.append((f"all:{status}", {"status": status}, None))
        return lists

    async def _item_pages(
        self, pager: ZoomPager, item: ZoomItem, progress: Progress
    ) -> AsyncIterator[Page]:
        state = progress.item(item.key)
        if self._relist_registrants(item, state):
            emitted: set[str] = set()  # registrant ids of this item already yielded this pass
            for list_id, params, source in await self._registrant_lists(pager, item):
                if list_id in progress.lists_done:
                    continue
                path = f"{item.kind}s/{item.id}/registrants"
                n = 0
                async for rows, last in pager.pages(
                    path,
                    "registrants",
                    params,
                    f"registrants of {item.kind} {item.id}",
                    add_total=True,
                ):
                    n += 1
                    records = []
                    for row in rows:
                        rid = str(row.get("id") or "")
                        if rid and rid in emitted:
                            continue
                        emitted.add(rid)
                        if self._in_window(parse_time(row.get("create_time"))):
                            records.append(
                                {
                                    "kind": "registrant",
                                    "item": item.ref(),
                                    "registrant": row,
                                    "status": params["status"],
                                    "tracking_source": source,
                                }
                            )
                    if last:
                        progress.lists_done.append(list_id)
                    yield Page(
                        records=records,
                        cursor=progress.dump(),
                        label=f"{item.key} registrants {list_id} p{n}",
                        total=pager.known_total,
                    )
            if self.ctx.since is None and self.ctx.until is None:
                state["registrants_read_at"] = self.ctx.run_started_at.isoformat()
        if (
            not item.recurring
            and item.start_time is not None
            and item.start_time > self.ctx.run_started_at
        ):
            return  # not held yet: no past instances
        async for page in self._instance_pages(pager, item, progress):
            yield page

    async def _instance_pages(
        self, pager: ZoomPager, item: ZoomItem, progress: Progress
    ) -> AsyncIterator[Page]:
        state = progress.item(item.key)
        kind = f"{item.kind}s"
        try:
            body = await pager.get_object(
                f"past_{kind}/{item.id}/instances", f"past instances of {item.kind} {item.id}"
            )
        except ZoomNotFound:
            return  # never held
        instances = body.get(kind)
        if not isinstance(instances, list):
            instances = []
        done: list[str] = state["instances_done"]
        ordered = sorted(
            (i for i in instances if isinstance(i, dict) and i.get("uuid")),
            key=lambda i: str(i.get("start_time") or ""),
        )
        for instance in ordered:
            uuid = str(instance["uuid"])
            started = parse_time(instance.get("start_time"))
            if uuid in done or not self._in_window(started):
                continue
            ref = {"uuid": uuid, "start_time": instance.get("start_time")}
            seen: set[str] = set()
            path = f"past_{kind}/{encode_uuid(uuid)}/participants"
            n = 0
            try:
                async for rows, last in pager.pages(
                    path,
                    "participants",
                    {},
                    f"participants of {item.kind} {item.id} instance",
                    add_total=True,
                ):
                    n += 1
                    linked = await self._registrants_of(item, rows)
                    records = collapse_participants(rows, seen, item.ref(), ref, linked)
                    if last and self._settled(item, started):
                        done.append(uuid)
                    yield Page(
                        records=records,
                        cursor=progress.dump(),
                        label=f"{item.key} instance {uuid} p{n}",
                        total=pager.known_total,
                    )
            except ZoomNotFound as exc:
                if exc.code == 12702:  # older than a year: Zoom will never serve it
                    done.append(uuid)
                # else: not ready yet (reports lag the end); try again next run
