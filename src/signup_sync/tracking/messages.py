"""Pure rules over one Segment message: ids, email, corrected time, UTMs, touch, record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from signup_sync.events.records import EventRecord
from signup_sync.events.schemas import as_utc, check_metadata
from signup_sync.leads.identity import normalise_phone, validate_normalised_email
from signup_sync.tracking.config import PAGE_EVENT_TYPE, TrackingConfig
from signup_sync.tracking.schemas import (
    AliasMessage,
    MessageBase,
    PageMessage,
    ScreenMessage,
    TrackMessage,
)
from signup_sync.vocabulary import EventType

MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
UTM_OF_CAMPAIGN = {
    "utm_source": ("source",),
    "utm_medium": ("medium",),
    "utm_campaign": ("name",),
    "utm_term": ("term", "keyword"),
    "utm_content": ("content",),
}
CLICK_IDS = ("gclid", "fbclid", "msclkid")
# Click ids without a column of their own: kept in the event's metadata (``click_ids``).
OTHER_CLICK_IDS = ("ttclid", "li_fat_id")
# What the browser reports about the device: personal data, kept only when configured.
USER_AGENT_FIELDS = ("userAgent", "userAgentData")


class MessageRejected(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(slots=True)
class Parsed:
    """One accepted message, reduced to what the service needs."""

    index: int
    type: str
    message_id: str
    anonymous_id: str | None
    user_id: str | None
    previous_id: str | None
    email: str | None
    event_name: str | None
    event_type: EventType | None  # set for touches: mapped tracks, landing page views
    occurred_at: datetime
    payload: dict[str, Any]
    bad_email: bool = False

    @property
    def is_touch(self) -> bool:
        return self.event_type is not None

    @property
    def unmapped(self) -> bool:
        return self.type == "track" and self.event_type is None


def sanitise(value: Any) -> Any:
    """Drop NUL characters (PostgreSQL text and JSONB cannot hold them), keys included."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): sanitise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitise(v) for v in value]
    return value


def text(value: Any, limit: int = 255) -> str | None:
    """A short clean string from a free-form JSON value, or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    cleaned = str(value).replace("\x00", "").strip()
    return cleaned[:limit] or None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def id_text(value: Any) -> str | None:
    return text(value, limit=200)


def corrected_time(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Segment's rule: the client clock's error is ``sentAt - receivedAt``; take it off."""
    if timestamp is None:
        return received_at
    if sent_at is None:
        return as_utc(timestamp)
    return as_utc(timestamp) + (received_at - as_utc(sent_at))


def auto_message_id(raw: dict[str, Any]) -> str:
    """A message without messageId is keyed by its content, so a resend still dedupes."""
    digest = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"auto-{digest[:40]}"


def traits_of(payload: dict[str, Any]) -> dict[str, Any]:
    """identify traits over context.traits (Rudder puts identify traits in context)."""
    own = _obj(payload.get("traits")) if payload.get("type") == "identify" else {}
    return {**_obj(_obj(payload.get("context")).get("traits")), **own}


def email_candidate(payload: dict[str, Any]) -> str | None:
    props = _obj(payload.get("properties")) if payload.get("type") == "track" else {}
    for source in (traits_of(payload), props):
        found = text(source.get("email"), limit=320)
        if found:
            return found
    return None


def _page_query(payload: dict[str, Any]) -> tuple[str | None, str | None, dict[str, list[str]]]:
    """The page's URL, referrer and query (of the URL, then of ``search``)."""
    context = _obj(payload.get("context"))
    page = _obj(context.get("page"))
    props = _obj(payload.get("properties")) if payload.get("type") in ("page", "screen") else {}
    url = text(page.get("url"), 2048) or text(props.get("url"), 2048)
    referrer = text(page.get("referrer"), 2048) or text(props.get("referrer"), 2048)
    query: dict[str, list[str]] = {}
    search = text(page.get("search"), 2048) or text(props.get("search"), 2048)
    for part in (urlsplit(url).query if url else "", (search or "").lstrip("?")):
        for key, values in parse_qs(part).items():
            query.setdefault(key.lower(), values)
    return url, referrer, query


def other_click_ids(payload: dict[str, Any]) -> dict[str, str]:
    """TikTok's and LinkedIn's click ids from the page URL (no column: metadata)."""
    query = _page_query(payload)[2]
    return {name: value for name in OTHER_CLICK_IDS if (value := _first(query, name))}


def page_fields(payload: dict[str, Any]) -> dict[str, str | None]:
    """URL, referrer, UTMs and click ids: context.campaign first, then the URL's query."""
    context = _obj(payload.get("context"))
    url, referrer, query = _page_query(payload)
    campaign = _obj(context.get("campaign"))
    fields: dict[str, str | None] = {"landing_page": url, "referrer": referrer}
    for utm, names in UTM_OF_CAMPAIGN.items():
        value = next((text(campaign.get(n)) for n in names if text(campaign.get(n))), None)
        value = value or _first(query, utm)
        fields[utm] = value.lower() if value else None
    for click in CLICK_IDS:
        fields[click] = _first(query, click)
    return fields


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return text(values[0]) if values else None


def is_landing(fields: dict[str, str | None]) -> bool:
    """A page view is a touch when it carries a campaign, a click id or an outside referrer."""
    if any(fields[k] for k in (*UTM_OF_CAMPAIGN, *CLICK_IDS)):
        return True
    referrer = fields["referrer"]
    if not referrer:
        return False
    ref_host = (urlsplit(referrer).hostname or "").removeprefix("www.")
    page_host = (urlsplit(fields["landing_page"] or "").hostname or "").removeprefix("www.")
    return bool(ref_host) and ref_host != page_host


def parse_message(
    index: int,
    raw: dict[str, Any],
    model: MessageBase,
    *,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any],
    config: TrackingConfig,
    received_at: datetime,
) -> Parsed:
    """Check what the spec leaves to the server and reduce the message; MessageRejected if not."""
    anonymous_id, user_id = id_text(model.anonymousId), id_text(model.userId)
    previous_id = id_text(model.previousId) if isinstance(model, AliasMessage) else None
    if isinstance(model, AliasMessage) and not (previous_id and user_id):
        raise MessageRejected("previousId", "alias needs previousId and userId")
    if not (anonymous_id or user_id):
        raise MessageRejected("userId", "every message needs a userId or an anonymousId")
    sent_at = model.sentAt or batch_sent_at
    try:
        occurred_at = corrected_time(
            model.timestamp or model.originalTimestamp, sent_at, received_at
        )
    except OverflowError:  # e.g. sentAt in the year 8000 pushes the result before year 1
        occurred_at = datetime.min.replace(tzinfo=UTC)
    if occurred_at < EARLIEST or occurred_at > received_at + MAX_FUTURE:
        raise MessageRejected(
            "timestamp", "after clock-skew correction it is before 2000 or more than a day ahead"
        )
    payload = sanitise(raw)
    payload.pop("writeKey", None)  # analytics.js puts the key in every message: never stored
    if batch_context:
        payload["context"] = {**sanitise(batch_context), **_obj(payload.get("context"))}
    if not config.keep_user_agent and isinstance(payload.get("context"), dict):
        context = payload["context"] = dict(payload["context"])
        for name in USER_AGENT_FIELDS:
            context.pop(name, None)
    payload["type"] = model_type(model)
    email, bad_email = None, False
    candidate = email_candidate(payload)
    if candidate:
        try:
            email = validate_normalised_email(candidate)
        except ValueError:
            bad_email = True
    event_name: str | None = None
    event_type: EventType | None = None
    if isinstance(model, TrackMessage):
        event_name = text(model.event, 200)
        event_type = config.event_type_of(model.event)
    elif isinstance(model, PageMessage | ScreenMessage):
        event_name = text(model.name, 200)
        landing = is_landing(page_fields(payload)) or bool(other_click_ids(payload))
        event_type = PAGE_EVENT_TYPE if landing else None
    return Parsed(
        index=index,
        type=payload["type"],
        message_id=model.messageId or auto_message_id(raw),
        anonymous_id=anonymous_id,
        user_id=user_id,
        previous_id=previous_id,
        email=email,
        event_name=event_name,
        event_type=event_type,
        occurred_at=occurred_at,
        payload=payload,
        bad_email=bad_email,
    )


def model_type(model: MessageBase) -> str:
    return str(getattr(model, "type", "track"))


def _names(traits: dict[str, Any]) -> dict[str, str | None]:
    first = text(traits.get("firstName"), 200) or text(traits.get("first_name"), 200)
    last = text(traits.get("lastName"), 200) or text(traits.get("last_name"), 200)
    full = text(traits.get("name"), 200)
    if full and not (first or last):
        first, _, rest = full.partition(" ")
        last = rest.strip() or None
    company = traits.get("company")
    return {
        "first_name": first,
        "last_name": last,
        "company": text(_obj(company).get("name"), 200) or text(company, 200),
        "phone": text(traits.get("phone"), 64),
    }


def names_of(payload: dict[str, Any]) -> dict[str, str]:
    """Name and company traits of a message (what an identify adds to the lead)."""
    names = _names(traits_of(payload))
    return {k: v for k in ("first_name", "last_name", "company") if (v := names[k])}


def _metadata(payload: dict[str, Any], message_id: str) -> dict[str, Any]:
    segment = {
        "type": payload.get("type"),
        "message_id": message_id,
        "anonymous_id": id_text(payload.get("anonymousId")),
        "user_id": id_text(payload.get("userId")),
    }
    name = text(payload.get("event"), 200) or text(payload.get("name"), 200)
    if name:
        segment["event" if payload.get("type") == "track" else "name"] = name
    base: dict[str, Any] = {"segment": segment}
    clicks = other_click_ids(payload)
    if clicks:
        base["click_ids"] = clicks
    properties = _obj(payload.get("properties"))
    if properties:
        try:
            return check_metadata({**base, "properties": properties}) or {}
        except ValueError:
            pass  # too large or too deep to keep as metadata; the message row keeps it all
    return base


def to_record(
    payload: dict[str, Any],
    *,
    message_id: str,
    event_type: str,
    source_type: str,
    occurred_at: datetime,
    email: str,
) -> EventRecord:
    """The funnel event of a touch message, keyed ``segment:{messageId}`` for idempotency."""
    names: dict[str, Any] = _names(traits_of(payload))
    page: dict[str, Any] = page_fields(payload)
    return EventRecord(
        source_type=source_type,
        event_type=event_type,
        occurred_at=occurred_at,
        email=email,
        phone_e164=normalise_phone(names["phone"]),
        external_id=f"segment:{message_id}",
        metadata=_metadata(payload, message_id),
        **names,
        **page,
    )
