"""Eventbrite: attendees of an organisation (or of configured events) -> event funnel events.

API facts (shared/source-apis.md §3): private token as ``Authorization: Bearer``; lists carry
``pagination{continuation, has_more_items}``; ``changed_since`` is inclusive at second
precision. Every attendee (any status) is an ``event_registered``; a checked-in attendee is also
an ``event_attended`` under the same external id. Cancelled and refunded attendees are kept with
that status so they never move the funnel.

Cursor (stored per page by the engine)::

    {"streams": {"organization:215487369012": "2024-06-14T21:05:33Z"},
     "resume": {"stream": ..., "changed_since": ..., "continuation": ..., "max_changed": ...}}

``streams`` holds, per listing, the max ``changed`` seen by the last complete run (capped at
that run's start); the next run asks for ``changed_since = that - overlap``. ``resume`` is set
while a listing is part-way through, so a crash after page k continues at page k+1 with the
same filter. Attendee lists are not ordered by ``changed``, so the max only becomes the
stream's cursor once its listing is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from signup_sync.events.records import EventRecord
from signup_sync.leads.identity import normalise_email
from signup_sync.logs import get_logger
from signup_sync.sources.base import Page, SourceConfig, SourceContext
from signup_sync.sources.errors import (
    FatalSourceError,
    PaginationLoopError,
    RetriableSourceError,
    SkipRecord,
)
from signup_sync.sources.http import SourceHttp
from signup_sync.sources.secrets import require
from signup_sync.vocabulary import EventType, SourceType

log = get_logger("signup_sync.sources.eventbrite")

SOURCE_TYPE = SourceType.EVENTBRITE.value
# Expansion that puts the event object (and so its name) on every attendee. A webhook
# receiver fetching an attendee's api_url should send the same so it maps identically.
ATTENDEE_EXPAND = "event"
CHANGED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class EventbriteConfig(SourceConfig):
    """Which attendees to read: an organisation's (all its events) or listed events."""

    base_url: str = "https://www.eventbriteapi.com/v3/"
    token_env: str = "SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN"  # noqa: S105 - the variable name, not a secret
    organization_id: str | None = None
    event_ids: list[str] = Field(default_factory=list)
    # Re-read this much before the stored cursor: the filter is inclusive and clocks lag.
    overlap_seconds: int = Field(default=300, ge=0, le=86_400)
    # 2,000 calls/hour per token; a shared token may want pacing (seconds between calls).
    min_request_interval_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    # Eventbrite signs nothing: the webhook URL carries this secret (?secret=...).
    webhook_secret_env: str | None = None

    @field_validator("organization_id", "event_ids", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # Ids given as JSON numbers are kept as text, like the ones Eventbrite sends.
        def text(v: Any) -> Any:
            return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

        return [text(v) for v in value] if isinstance(value, list) else text(value)

    @field_validator("organization_id")
    @classmethod
    def _numeric_org(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().isdigit():
            raise ValueError("organization_id must be Eventbrite's numeric id")
        return value.strip() if value is not None else None

    @field_validator("event_ids")
    @classmethod
    def _numeric_events(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value]
        if any(not v.isdigit() for v in cleaned):
            raise ValueError("event_ids must be Eventbrite's numeric event ids")
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _one_scope(self) -> EventbriteConfig:
        if bool(self.organization_id) == bool(self.event_ids):
            raise ValueError("set exactly one of organization_id or event_ids")
        return self


# --- mapping (pure) -------------------------------------------------------------------------


def parse_time(raw: Any) -> datetime | None:
    """Eventbrite's UTC ``…Z`` timestamps; None when absent or unreadable."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(CHANGED_FORMAT)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def attendee_status(attendee: Mapping[str, Any]) -> str:
    """Our status from the booleans (the display string is only a fallback)."""
    if attendee.get("refunded") is True:
        return "refunded"
    if attendee.get("cancelled") is True:
        return "cancelled"
    if str(attendee.get("status") or "").strip().lower() in ("not attending", "deleted"):
        return "cancelled"
    return "active"


def _event_name(attendee: Mapping[str, Any]) -> str | None:
    event = attendee.get("event")
    if not isinstance(event, Mapping):
        return None
    name = event.get("name")
    if isinstance(name, Mapping):
        return _text(name.get("text"))
    return _text(name)


def _checked_in_at(attendee: Mapping[str, Any]) -> datetime | None:
    """When the attendee was checked in, or None if they were not."""
    used = [
        b
        for b in attendee.get("barcodes") or []
        if isinstance(b, Mapping) and str(b.get("status") or "").lower() == "used"
    ]
    if attendee.get("checked_in") is not True and not used:
        return None
    times = [t for b in used if (t := parse_time(b.get("changed"))) is not None]
    return min(times) if times else parse_time(attendee.get("changed"))


def _metadata(attendee: Mapping[str, Any], attendee_id: str) -> dict[str, Any]:
    gross = (attendee.get("costs") or {}).get("gross")
    gross = gross if isinstance(gross, Mapping) else {}
    return {
        "item": {
            "kind": "event",
            "id": _text(attendee.get("event_id")),
            "name": _event_name(attendee),
        },
        "attendee_id": attendee_id,
        "order_id": _text(attendee.get("order_id")),
        "ticket_class": {
            "id": _text(attendee.get("ticket_class_id")),
            "name": _text(attendee.get("ticket_class_name")),
        },
        "status": _text(attendee.get("status")),
        "amount": _text(gross.get("major_value")),
        "currency": _text(gross.get("currency")),
        "affiliate": _text(attendee.get("affiliate")),
        "created": _text(attendee.get("created")),
        "changed": _text(attendee.get("changed")),
    }


def map_attendee(attendee: Any) -> list[EventRecord]:
    """One attendee JSON (from a list or a webhook's ``api_url``) -> its funnel events.

    Raises SkipRecord for an attendee without an id, an email or a creation time.
    """
    if not isinstance(attendee, Mapping):
        raise SkipRecord("not an attendee object")
    attendee_id = _text(attendee.get("id"))
    if attendee_id is None:
        raise SkipRecord("no attendee id")
    profile = attendee.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    email = normalise_email(_text(profile.get("email")))
    if email is None:
        raise SkipRecord("no email")
    created = parse_time(attendee.get("created"))
    if created is None:
        raise SkipRecord("no valid created time")

    affiliate = _text(attendee.get("affiliate"))
    common: dict[str, Any] = {
        "source_type": SOURCE_TYPE,
        "email": email,
        "first_name": _text(profile.get("first_name")),
        "last_name": _text(profile.get("last_name")),
        "phone": _text(profile.get("cell_phone")) or _text(profile.get("work_phone")),
        "company": _text(profile.get("company")),
        "external_id": f"attendee:{attendee_id}",
        "utm_source": affiliate.lower() if affiliate else None,
        "metadata": _metadata(attendee, attendee_id),
        "status": attendee_status(attendee),
    }
    records = [
        EventRecord(event_type=EventType.EVENT_REGISTERED.value, occurred_at=created, **common)
    ]
    attended = _checked_in_at(attendee)
    if attended is not None:
        records.append(
            EventRecord(
                event_type=EventType.EVENT_ATTENDED.value,
                occurred_at=max(attended, created),
                **{**common, "metadata": dict(common["metadata"])},
            )
        )
    return records


# --- the connector --------------------------------------------------------------------------


def _page_shape(body: Any, what: str) -> tuple[list[Any], bool, str | None]:
    """(attendees, has_more_items, continuation) or RetriableSourceError for a malformed page."""
    if not isinstance(body, dict):
        raise RetriableSourceError(f"{what}: malformed page (not a JSON object)")
    attendees = body.get("attendees")
    pagination = body.get("pagination")
    if not isinstance(attendees, list) or not isinstance(pagination, dict):
        raise RetriableSourceError(f"{what}: malformed page (no attendees/pagination)")
    has_more = pagination.get("has_more_items")
    continuation = pagination.get("continuation")
    if not isinstance(has_more, bool):
        raise RetriableSourceError(f"{what}: malformed page (has_more_items is not a boolean)")
    if continuation is not None and not isinstance(continuation, str):
        raise RetriableSourceError(f"{what}: malformed page (continuation is not a string)")
    if has_more and not continuation:
        raise RetriableSourceError(f"{what}: malformed page (more items but no continuation)")
    return attendees, has_more, continuation or None


class EventbriteConnector:
    """Streams attendee pages; one listing per organisation or per configured event."""

    source_type: ClassVar[str] = SOURCE_TYPE
    config_model: ClassVar[type[SourceConfig]] = EventbriteConfig

    def __init__(self, ctx: SourceContext) -> None:
        if not isinstance(ctx.config, EventbriteConfig):
            raise FatalSourceError("eventbrite: config is not an EventbriteConfig")
        self.ctx = ctx
        self.config: EventbriteConfig = ctx.config
        self._http: SourceHttp | None = None
        self._totals: dict[str, int] = {}  # listing -> its object_count

    def _client(self) -> SourceHttp:
        if self._http is None:
            token = require(
                self.ctx.secrets, "token", "eventbrite: API token missing", self.config.token_env
            )
            self._http = SourceHttp(
                self.ctx,
                base_url=self.config.base_url.rstrip("/") + "/",
                headers={"Authorization": f"Bearer {token}"},
                min_interval_seconds=self.config.min_request_interval_seconds,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def map_record(self, record: Any) -> list[EventRecord]:
        return map_attendee(record)

    def _streams(self) -> list[tuple[str, str]]:
        """(stream key, list path) for every listing this config reads."""
        if self.config.organization_id:
            org = self.config.organization_id
            return [(f"organization:{org}", f"organizations/{org}/attendees/")]
        return [(f"event:{e}", f"events/{e}/attendees/") for e in self.config.event_ids]

    def _window_run(self) -> bool:
        # A backfill window reads a slice; it must not move the incremental cursor.
        return self.ctx.since is not None or self.ctx.until is not None

    def _start_state(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        stored = {} if self.ctx.force or self._window_run() else dict(self.ctx.cursor or {})
        streams = stored.get("streams")
        resume = stored.get("resume")
        streams = {k: v for k, v in streams.items()} if isinstance(streams, dict) else {}
        return streams, resume if isinstance(resume, dict) else None

    def _first_changed_since(self, committed: str | None) -> str | None:
        if self.ctx.since is not None:
            return format_time(self.ctx.since)
        if self._window_run() or committed is None:
            return None
        start = parse_time(committed)
        if start is None:
            return None
        return format_time(start - timedelta(seconds=self.config.overlap_seconds))

    async def pages(self) -> AsyncIterator[Page]:
        http = self._client()
        streams, resume = self._start_state()
        listings = self._streams()
        if resume is not None:
            # Finish the interrupted listing first: the cursor has one resume slot, and the
            # other listings' pages would overwrite it.
            listings.sort(key=lambda listing: listing[0] != resume.get("stream"))
        for key, path in listings:
            own = resume if resume is not None and resume.get("stream") == key else None
            async for page in self._stream_pages(http, key, path, streams, own):
                yield page

    async def _stream_pages(
        self,
        http: SourceHttp,
        key: str,
        path: str,
        streams: dict[str, str],
        resume: dict[str, Any] | None,
    ) -> AsyncIterator[Page]:
        if resume is not None:
            changed_since = resume.get("changed_since")
            continuation = resume.get("continuation")
            max_changed = parse_time(resume.get("max_changed"))
        else:
            changed_since = self._first_changed_since(streams.get(key))
            continuation, max_changed = None, None
        seen: set[str] = set()
        number = 0
        while True:
            params: dict[str, str] = {"expand": ATTENDEE_EXPAND}
            if changed_since:
                params["changed_since"] = changed_since
            if continuation:
                params["continuation"] = continuation
                seen.add(continuation)
            number += 1
            what = f"eventbrite {key} page {number}"
            try:
                body = await http.get_json(path, params=params, what=what)
            except FatalSourceError:
                if not (resume is not None and number == 1 and continuation):
                    raise
                # A stored continuation may have expired (400 BAD_CONTINUATION_TOKEN):
                # restart this listing with the same filter; ingestion absorbs the re-read.
                log.warning("eventbrite_resume_restart", stream=key)
                continuation, resume, number = None, None, 0
                continue
            attendees, has_more, next_token = _page_shape(body, what)
            count = body["pagination"].get("object_count")
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                self._totals[key] = count
            if next_token is not None and next_token in seen:
                raise PaginationLoopError(f"{what}: continuation token repeated")
            for attendee in attendees:
                if not isinstance(attendee, dict):
                    continue
                changed = parse_time(attendee.get("changed"))
                if changed is not None and (max_changed is None or changed > max_changed):
                    max_changed = changed
            records = self._in_window(attendees)
            if has_more:
                cursor = self._cursor(
                    streams,
                    {
                        "stream": key,
                        "changed_since": changed_since,
                        "continuation": next_token,
                        "max_changed": format_time(max_changed) if max_changed else None,
                    },
                )
                yield Page(records=records, cursor=cursor, label=what, total=self._total())
                continuation = next_token
                continue
            if max_changed is not None:
                capped = min(max_changed, self.ctx.run_started_at)
                streams[key] = format_time(capped)
            yield Page(
                records=records,
                cursor=self._cursor(streams, None),
                label=what,
                total=self._total(),
            )
            return

    def _total(self) -> int | None:
        """The listings' object_count so far (a listing not started yet is not in it)."""
        return sum(self._totals.values()) if self._totals else None

    def _in_window(self, attendees: list[Any]) -> list[Any]:
        until = self.ctx.until
        if until is None:
            return attendees
        # changed_since already bounds the start; the end bound is on registration time.
        return [
            a
            for a in attendees
            if not isinstance(a, dict)
            or (created := parse_time(a.get("created"))) is None
            or created <= until
        ]

    def _cursor(
        self, streams: dict[str, str], resume: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if self._window_run():
            return None
        return {"streams": dict(streams), "resume": resume}
