"""Turning one stored delivery into the events a sync would give the same records.

Each source's own mapping does the work (``zoom_records.map_webhook_event``,
``eventbrite.map_attendee``, ``easyappointments.map_webhook``, ``PoshvipConnector.map_record``),
so a record gets the same external ids whichever way it arrives. Eventbrite and
EasyAppointments deliveries are thin: the record is fetched from the source's API here
(never inside a database transaction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from signup_sync.db.models import FunnelSource
from signup_sync.db.types import utcnow
from signup_sync.events.records import EventRecord
from signup_sync.sources.access import SourceAccess
from signup_sync.sources.base import RetryPolicy, SourceConfig, SourceContext, StoredEvents
from signup_sync.sources.easyappointments import ApiReader, EasyAppointmentsConfig, map_webhook
from signup_sync.sources.easyappointments_deletions import GONE, map_gone
from signup_sync.sources.errors import FatalSourceError, SkipRecord
from signup_sync.sources.eventbrite import ATTENDEE_EXPAND, EventbriteConfig, map_attendee
from signup_sync.sources.http import SourceHttp
from signup_sync.sources.secrets import require
from signup_sync.sources.zoom import ZoomConfig
from signup_sync.sources.zoom_records import (
    linked_registrants,
    map_webhook_event,
    webhook_participant,
)
from signup_sync.webhooks.relay import posh_relay_events

EVENTBRITE_API = "https://www.eventbriteapi.com/v3/"
# Actions whose api_url names an order or an attendee; others carry no person.
EVENTBRITE_FETCHED = ("order.", "attendee.", "barcode.")
ORDER_EXPAND = "attendees,attendees.event,event"
_ORDER_PATH = re.compile(r"^orders/(\d{1,20})/?$")
_ATTENDEE_PATH = re.compile(r"^events/(\d{1,20})/attendees/(\d{1,20})/?$")
DEFAULT_RETRY = RetryPolicy(attempts=3, max_total_seconds=60.0, timeout_seconds=20.0)


class Refused(Exception):
    """A delivery that can never be processed as it is (parked at once, replayable)."""


@dataclass(slots=True)
class Built:
    events: list[EventRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def context(
    source: FunnelSource,
    config: SourceConfig,
    *,
    transport: httpx.AsyncBaseTransport | None,
    retry: RetryPolicy | None,
    access: SourceAccess | None = None,
    stored: StoredEvents | None = None,
) -> SourceContext:
    access = access or SourceAccess()
    return SourceContext(
        source_id=source.id,
        source_type=source.source_type,
        name=source.name,
        config=config,
        secrets=access.secrets(config, source.secret_values),
        cursor=None,
        run_started_at=utcnow(),
        retry=retry or DEFAULT_RETRY,
        access=access,
        transport=transport,
        stored=stored,
    )


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused("the stored body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused("the stored body is not a JSON object")
    return body


async def build(raw: bytes, ctx: SourceContext) -> Built:
    """The events of one delivery; raises Refused, SkipRecord or a source error."""
    body = _body(raw)
    config = ctx.config
    if isinstance(config, ZoomConfig):
        linked: dict[str, str] = {}
        if (found := webhook_participant(body)) is not None:
            item, participant = found
            linked = await linked_registrants(ctx.stored, item, [participant])
        return Built(events=map_webhook_event(body, config.mapping_options(), linked))
    if isinstance(config, EventbriteConfig):
        return await _eventbrite(body, ctx, config)
    if isinstance(config, EasyAppointmentsConfig):
        return await _easyappointments(body, ctx, config)
    if ctx.source_type == "poshvip":
        return Built(events=posh_relay_events(body, ctx))
    raise Refused(f"no webhook processing for source type {ctx.source_type}")


# ---- Eventbrite -----------------------------------------------------------------------------


def allowed_path(api_url: str, bases: list[str]) -> tuple[str, str]:
    """(base, path under it) when ``api_url`` lies under one of ``bases``; else Refused.

    Compared part by part (scheme, host, port, path prefix): a look-alike host, user info,
    ``..`` segments or a query cannot point the fetch, and our token, anywhere else.
    """
    try:
        url = urlsplit(api_url)
        port = url.port
    except ValueError:
        raise Refused("api_url is not a URL; nothing was fetched") from None
    if url.username or url.password or ".." in url.path.split("/") or "\\" in api_url:
        raise Refused("api_url is not a plain API URL; nothing was fetched")
    for base in bases:
        allowed = urlsplit(base.rstrip("/") + "/")
        if (
            url.scheme == allowed.scheme
            and url.hostname is not None
            and url.hostname == allowed.hostname
            and port == allowed.port
            and url.path.startswith(allowed.path)
        ):
            return base.rstrip("/") + "/", url.path[len(allowed.path) :]
    raise Refused(
        "api_url is not on Eventbrite's API host nor under the source's base_url; "
        "nothing was fetched"
    )


async def _eventbrite(body: dict[str, Any], ctx: SourceContext, config: EventbriteConfig) -> Built:
    hook = body.get("config")
    action = str((hook or {}).get("action") or "") if isinstance(hook, dict) else ""
    api_url = body.get("api_url")
    if action == "test" or not isinstance(api_url, str) or api_url.startswith("{"):
        return Built(notes=["ignored: test delivery"])
    if not action.startswith(EVENTBRITE_FETCHED):
        return Built(notes=[f"ignored: {action or 'no action'} carries no attendee"])
    base, path = allowed_path(api_url, [config.base_url, EVENTBRITE_API])
    order, attendee = _ORDER_PATH.match(path), _ATTENDEE_PATH.match(path)
    if order is None and attendee is None:
        raise Refused(f"api_url of {action} names neither an order nor an attendee")
    token = require(ctx.secrets, "token", "eventbrite", config.token_env)
    http = SourceHttp(ctx, base_url=base, headers={"Authorization": f"Bearer {token}"})
    try:
        if attendee is not None:
            found = await http.get_json(
                path, params={"expand": ATTENDEE_EXPAND}, what="eventbrite attendee",
                follow_redirects=False,
            )  # fmt: skip
            return Built(events=map_attendee(found))
        found = await http.get_json(
            path, params={"expand": ORDER_EXPAND}, what="eventbrite order", follow_redirects=False
        )
    finally:
        await http.aclose()
    if not isinstance(found, dict) or not isinstance(found.get("attendees"), list):
        raise Refused("the order has no attendees list (expand=attendees)")
    built = Built()
    event = found.get("event")
    for item in found["attendees"]:
        if isinstance(item, dict) and isinstance(event, dict) and "event" not in item:
            item = {**item, "event": event}  # one order, one event
        try:
            built.events.extend(map_attendee(item))
        except SkipRecord as exc:
            built.notes.append(f"attendee skipped: {exc.reason}")
    return built


# ---- EasyAppointments -----------------------------------------------------------------------


async def _easyappointments(
    body: dict[str, Any], ctx: SourceContext, config: EasyAppointmentsConfig
) -> Built:
    action = body.get("action")
    if action not in ("appointment_save", "appointment_delete"):
        return Built(notes=[f"ignored: {action}"])
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise SkipRecord("malformed webhook payload")
    if payload.get("is_unavailability") in (True, 1, "1"):
        return Built(notes=["ignored: unavailability"])
    if action == "appointment_delete":
        return await _easyappointments_deleted(payload, ctx)
    if config.mode != "api":
        raise SkipRecord(
            "customer unknown: the payload has only its id and this source reads MySQL, "
            "not the API; the next poll brings the appointment"
        )
    try:
        reader = ApiReader(ctx, config)
    except FatalSourceError as exc:
        raise SkipRecord(
            f"customer unknown: no API access ({exc}); the next poll brings it"
        ) from None
    try:
        customer = await reader.customer(_int(payload.get("id_users_customer")))
        service = await _one(reader, "services", payload.get("id_services"))
        provider = await _one(reader, "providers", payload.get("id_users_provider"))
    finally:
        await reader.aclose()
    events = map_webhook(
        body, config, now=utcnow(), customer=customer, service=service, provider=provider
    )
    return Built(events=events)


async def _easyappointments_deleted(payload: dict[str, Any], ctx: SourceContext) -> Built:
    """A deletion by id, in either mode: the stored events of the appointment, cancelled.
    The payload's customer may be gone too (a cascade); the stored lead is the one to fold."""
    key = _int(payload.get("id"))
    if key is None:
        raise SkipRecord("malformed webhook payload")
    if ctx.stored is None:
        raise SkipRecord("deletion: stored events cannot be looked up here")
    refs = [r for r in await ctx.stored.find([f"appointment:{key}"]) if r.status != "cancelled"]
    if not refs:
        return Built(notes=[f"ignored: appointment {key} has no active stored events"])
    return Built(events=map_gone({"kind": GONE, "id": key, "events": refs}))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


async def _one(reader: ApiReader, resource: str, raw_id: Any) -> dict[str, Any] | None:
    """A service or provider (for its name / time zone); None if gone."""
    key = _int(raw_id)
    if key is None:
        return None
    try:
        found = await reader.http.get_json(f"{resource}/{key}", what=f"GET {resource}/{{id}}")
    except FatalSourceError:
        return None  # 404 (deleted): the events still map, without the name
    return found if isinstance(found, dict) else None
