"""Tracking API configuration: write keys (with their source type) and the track-name map."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

import orjson

from signup_sync.tracking.cors import OriginRule, allowed, parse_rules
from signup_sync.vocabulary import EventType, SourceType

MIN_WRITE_KEY_LENGTH = 8
DEFAULT_SOURCE_TYPE = SourceType.DIRECT_SIGNUP
# What a page (or screen) view becomes once it is a touchpoint: the person arrived.
PAGE_EVENT_TYPE = EventType.LEAD_CAPTURED

# Segment's spec names (B2B SaaS, e-commerce, ...) and our own event types, in any case.
DEFAULT_EVENT_MAP: dict[str, EventType] = {
    "Signed Up": EventType.SIGNUP_COMPLETED,
    "Signup Started": EventType.SIGNUP_STARTED,
    "Sign Up Started": EventType.SIGNUP_STARTED,
    "Lead Captured": EventType.LEAD_CAPTURED,
    "Referral Received": EventType.REFERRAL_RECEIVED,
    "Appointment Booked": EventType.APPOINTMENT_BOOKED,
    "Appointment Completed": EventType.APPOINTMENT_COMPLETED,
    "Webinar Registered": EventType.WEBINAR_REGISTERED,
    "Webinar Attended": EventType.WEBINAR_ATTENDED,
    "Event Registered": EventType.EVENT_REGISTERED,
    "Event Attended": EventType.EVENT_ATTENDED,
    "Order Completed": EventType.CONVERTED,
    **{event_type.value: event_type for event_type in EventType},
}


def name_key(name: str) -> str:
    """Track names match case-insensitively, with runs of blanks counted as one space."""
    return re.sub(r"\s+", " ", name.strip()).casefold()


def write_key_id(key: str) -> str:
    """A stable, non-secret name for a write key (stored and shown instead of the key)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class WriteKey:
    id: str
    source_type: str
    # A public (browser) key's own allowed origins; empty for a server key.
    origins: tuple[OriginRule, ...] = ()

    @property
    def public(self) -> bool:
        return bool(self.origins)


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    keys: dict[bytes, WriteKey] = field(default_factory=dict)
    event_map: dict[str, EventType] = field(default_factory=dict)
    # CORS_ORIGINS: the browser origins of keys without their own (the behaviour before
    # per-key origins existed); "*" allows any.
    shared_origins: tuple[str, ...] = ()
    keep_user_agent: bool = False

    def origin_allowed(self, key: WriteKey, origin: str) -> bool:
        """May a browser page at ``origin`` send with ``key``?"""
        if key.public:
            return allowed(key.origins, origin)
        return "*" in self.shared_origins or origin in self.shared_origins

    def any_key_allows(self, origin: str) -> bool:
        """A preflight carries no credentials, so it is answered for every key's origins."""
        if "*" in self.shared_origins or origin in self.shared_origins:
            return True
        return any(allowed(key.origins, origin) for key in self.keys.values() if key.public)

    def match_key(self, given: str) -> WriteKey | None:
        """Constant-time comparison against every configured key."""
        candidate = given.encode()
        found: WriteKey | None = None
        for key, write_key in self.keys.items():
            if hmac.compare_digest(candidate, key):
                found = write_key
        return found

    def event_type_of(self, name: str) -> EventType | None:
        return self.event_map.get(name_key(name))


def parse_write_keys(entries: list[str]) -> dict[bytes, WriteKey]:
    """``KEY``, ``KEY=source_type``, either followed by ``@origin|origin...`` (a public
    browser key and its allowed origins); errors never repeat the key itself."""
    keys: dict[bytes, WriteKey] = {}
    for position, entry in enumerate(entries, start=1):
        entry, at, origin_list = entry.partition("@")
        try:
            origins = parse_rules(origin_list) if at else ()
        except ValueError as exc:
            raise ValueError(f"write key #{position}: {exc}") from None
        key, _, source = entry.partition("=")
        key, source = key.strip(), source.strip() or DEFAULT_SOURCE_TYPE.value
        if len(key) < MIN_WRITE_KEY_LENGTH:
            raise ValueError(
                f"write key #{position} must be at least {MIN_WRITE_KEY_LENGTH} characters"
            )
        if source not in {s.value for s in SourceType}:
            allowed = ", ".join(s.value for s in SourceType)
            raise ValueError(f"write key #{position}: source type must be one of {allowed}")
        keys[key.encode()] = WriteKey(id=write_key_id(key), source_type=source, origins=origins)
    return keys


def parse_event_map(raw: str) -> dict[str, EventType]:
    """The defaults, overridden by a JSON object of ``name: event_type`` (null unmaps)."""
    mapping = {name_key(name): event_type for name, event_type in DEFAULT_EVENT_MAP.items()}
    if not raw.strip():
        return mapping
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object such as {"Demo Booked": "appointment_booked"}')
    allowed = {e.value for e in EventType}
    for name, event_type in data.items():
        if not name_key(name):
            raise ValueError("event names must not be blank")
        if event_type is None:
            mapping.pop(name_key(name), None)
        elif event_type in allowed:
            mapping[name_key(name)] = EventType(event_type)
        else:
            raise ValueError(
                f"{name!r} maps to {event_type!r}; use one of {', '.join(sorted(allowed))} or null"
            )
    return mapping


def tracking_config(
    write_keys: list[str],
    event_map: str,
    shared_origins: list[str] | None = None,
    keep_user_agent: bool = False,
) -> TrackingConfig:
    return TrackingConfig(
        keys=parse_write_keys(write_keys),
        event_map=parse_event_map(event_map),
        shared_origins=tuple(shared_origins or ()),
        keep_user_agent=keep_user_agent,
    )
