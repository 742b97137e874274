"""Zoom records -> funnel events, shared by the sync (``ZoomConnector.map_record``) and webhooks.

Both paths build the same small "wrapped" record and map it here, so a registrant or a
participant gets the same external id whichever way it arrives:

* registrant: ``{webinar|meeting}:{id}:registrant:{registrant_id}`` -> ``webinar_registered``
* attendance: ``{webinar|meeting}_instance:{instance uuid}:person:{hash of email}`` ->
  ``webinar_attended``, one per person per occurrence however often they re-joined. A row
  whose ``registrant_id`` names a stored registrant is that registrant's: their email (the
  lead's) keys and joins it, whatever email the row carries, or none (§2.7.4, §2.8).

Meetings with registration are treated as webinar-like touchpoints (source-apis.md §2.8): they
map to ``webinar_registered`` / ``webinar_attended`` with ``metadata.item.kind = "meeting"``.
The person key hashes the normalised email (§2.8 keys by ``lower(email)``) so the id stays under
255 characters and keeps addresses out of ids and logs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from signup_sync.events.records import UTM_FIELDS, EventRecord
from signup_sync.leads.identity import normalise_email
from signup_sync.sources.base import StoredEvents
from signup_sync.sources.errors import SkipRecord
from signup_sync.vocabulary import EventType, SourceType

SOURCE_TYPE = SourceType.ZOOM.value
# Registrant status -> event status. Denied/cancelled registrations are kept, not counted.
REGISTRANT_STATUS = {"approved": "active", "pending": "active", "denied": "denied"}
WEBHOOK_REGISTRATION = {
    "registration_created": None,  # the registrant's own status (approved or pending)
    "registration_approved": "approved",
    "registration_denied": "denied",
    "registration_cancelled": "cancelled",
}
WEBHOOK_PARTICIPATION = ("participant_joined", "participant_left")


def question_key(title: str) -> str:
    """``"UTM Source"`` / ``"utm-source"`` -> ``"utm_source"``."""
    return "_".join(title.strip().lower().replace("-", " ").split())


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """The config that shapes mapping (the rest of ZoomConfig is about fetching)."""

    # Custom-question title (any case/spacing) -> UTM field; utm_* titles map to themselves.
    utm_questions: Mapping[str, str] = field(default_factory=dict)
    count_pending: bool = True
    skip_internal_users: bool = True

    def utm_field(self, title: str) -> str | None:
        key = question_key(title)
        if key in UTM_FIELDS:
            return key
        wanted = {question_key(k): v for k, v in self.utm_questions.items()}
        return wanted.get(key)


def parse_time(value: Any) -> datetime | None:
    """Zoom times are ISO-8601 UTC (``…Z``); anything else is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def person_key(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:20]


def _text(value: Any) -> str | None:
    """Zoom returns ``""`` for unset optional fields: those are None here."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _e164(phone: str | None, country: str | None) -> str | None:
    if not phone:
        return None
    region = country.upper() if country and len(country) == 2 else None
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _item(record: Mapping[str, Any]) -> dict[str, Any]:
    item = record.get("item")
    if not isinstance(item, Mapping) or item.get("kind") not in ("webinar", "meeting"):
        raise SkipRecord("record without its webinar or meeting")
    return {"kind": item["kind"], "id": str(item.get("id")), "name": _text(item.get("name"))}


def _utm(
    record: Mapping[str, Any], registrant: Mapping[str, Any], options: MappingOptions
) -> dict[str, str]:
    utm: dict[str, str] = {}
    source = record.get("tracking_source")
    if isinstance(source, Mapping) and (name := _text(source.get("source_name"))):
        utm["utm_source"] = name.lower()
    # Hidden-field custom questions are more specific than the tracking link: they win.
    for question in registrant.get("custom_questions") or []:
        if not isinstance(question, Mapping):
            continue
        name = options.utm_field(str(question.get("title") or ""))
        value = _text(question.get("value"))
        if name and value:
            utm[name] = value.lower()
    return utm


def map_registrant(record: Mapping[str, Any], options: MappingOptions) -> EventRecord:
    item = _item(record)
    registrant = record.get("registrant")
    if not isinstance(registrant, Mapping):
        raise SkipRecord("registrant record without registrant")
    registrant_id = _text(registrant.get("id"))
    if registrant_id is None:
        raise SkipRecord("registrant without id")
    email = normalise_email(_text(registrant.get("email")))
    if email is None:
        raise SkipRecord("no email")
    occurred = parse_time(registrant.get("create_time")) or record.get("received_at")
    if not isinstance(occurred, datetime):
        raise SkipRecord("registrant without create_time")
    zoom_status = str(record.get("status") or registrant.get("status") or "approved")
    status = REGISTRANT_STATUS.get(zoom_status, zoom_status)
    if zoom_status == "pending" and not options.count_pending:
        status = "pending"
    source = record.get("tracking_source")
    tracking = (
        {"id": _text(source.get("id")), "name": _text(source.get("source_name"))}
        if isinstance(source, Mapping)
        else None
    )
    utm = _utm(record, registrant, options)
    phone = _text(registrant.get("phone"))
    country = _text(registrant.get("country"))
    metadata: dict[str, Any] = {
        "item": item,
        "registrant_id": registrant_id,
        "registrant_status": zoom_status,
        "tracking_source": tracking,
    }
    for name in ("job_title", "industry", "country"):
        if value := _text(registrant.get(name)):
            metadata[name] = value
    return EventRecord(
        source_type=SOURCE_TYPE,
        event_type=EventType.WEBINAR_REGISTERED.value,
        occurred_at=occurred,
        email=email,
        first_name=_text(registrant.get("first_name")),
        last_name=_text(registrant.get("last_name")),
        phone=phone,
        phone_e164=_e164(phone, country),
        company=_text(registrant.get("org")),
        external_id=f"{item['kind']}:{item['id']}:registrant:{registrant_id}",
        utm_source=utm.get("utm_source"),
        utm_medium=utm.get("utm_medium"),
        utm_campaign=utm.get("utm_campaign"),
        utm_term=utm.get("utm_term"),
        utm_content=utm.get("utm_content"),
        metadata=metadata,
        status=status,
    )


def map_participant(record: Mapping[str, Any], options: MappingOptions) -> EventRecord:
    item = _item(record)
    participant = record.get("participant")
    instance = record.get("instance")
    if not isinstance(participant, Mapping) or not isinstance(instance, Mapping):
        raise SkipRecord("participant record without participant or instance")
    uuid = _text(instance.get("uuid"))
    if uuid is None:
        raise SkipRecord("participant without instance uuid")
    if participant.get("internal_user") and options.skip_internal_users:
        raise SkipRecord("internal user (host, panelist or staff)")
    if record.get("admitted") is False:
        raise SkipRecord("only in the waiting room")
    # Linked to a known registrant by registrant_id: that registrant's lead, whatever
    # email (or none) the participant joined with (source-apis.md §2.7.4).
    email = normalise_email(_text(record.get("email"))) or normalise_email(
        _text(participant.get("user_email"))
    )
    if email is None:
        raise SkipRecord("no email (guest or anonymous participant)")
    occurred = parse_time(participant.get("join_time")) or record.get("received_at")
    if not isinstance(occurred, datetime):
        raise SkipRecord("participant without join_time")
    metadata: dict[str, Any] = {
        "item": item,
        "instance": {"uuid": uuid, "start_time": _text(instance.get("start_time"))},
        "registrant_id": _text(participant.get("registrant_id")),
        "display_name": _text(participant.get("name")),
        "sessions": record.get("sessions", 1),
    }
    if record.get("linked"):
        metadata["linked_by"] = "registrant_id"
    if record.get("duration_seconds") is not None:
        metadata["duration_seconds"] = record["duration_seconds"]
    return EventRecord(
        source_type=SOURCE_TYPE,
        event_type=EventType.WEBINAR_ATTENDED.value,
        occurred_at=occurred,
        email=email,
        external_id=f"{item['kind']}_instance:{uuid}:person:{person_key(email)}",
        metadata=metadata,
    )


def map_zoom_record(record: Mapping[str, Any], options: MappingOptions) -> list[EventRecord]:
    """Map one wrapped record (as ``ZoomConnector.pages`` yields them) to its event."""
    kind = record.get("kind")
    if kind == "registrant":
        return [map_registrant(record, options)]
    if kind == "participant":
        return [map_participant(record, options)]
    raise SkipRecord(f"unknown Zoom record kind {kind!r}")


def map_webhook_event(
    body: Mapping[str, Any],
    options: MappingOptions | None = None,
    linked: Mapping[str, str] | None = None,
) -> list[EventRecord]:
    """Map a Zoom webhook body (already verified) to the events a sync would give.

    Registration events -> ``webinar_registered`` (denied/cancelled with that status);
    ``participant_joined``/``_left`` -> ``webinar_attended``. Other events map to nothing.
    Raises SkipRecord for an unusable body (no email, missing object). ``linked``
    (``linked_registrants``) joins a participant to their registrant's lead, as a sync does.
    """
    options = options or MappingOptions()
    event = body.get("event")
    if not isinstance(event, str):
        return []
    kind, _, action = event.partition(".")
    if kind not in ("webinar", "meeting") or (
        action not in WEBHOOK_REGISTRATION and action not in WEBHOOK_PARTICIPATION
    ):
        return []
    payload = body.get("payload")
    obj = payload.get("object") if isinstance(payload, Mapping) else None
    if not isinstance(obj, Mapping) or obj.get("id") in (None, ""):
        raise SkipRecord(f"{event} without payload.object.id")
    # The id is a number in registration events and a string in participant events.
    item = {"kind": kind, "id": str(obj["id"]), "name": obj.get("topic")}
    event_ts = body.get("event_ts")
    received = (
        datetime.fromtimestamp(event_ts / 1000, UTC) if isinstance(event_ts, int | float) else None
    )
    if action in WEBHOOK_REGISTRATION:
        registrant = obj.get("registrant")
        if not isinstance(registrant, Mapping):
            raise SkipRecord(f"{event} without registrant")
        status = WEBHOOK_REGISTRATION[action] or registrant.get("status") or "approved"
        record: dict[str, Any] = {
            "kind": "registrant",
            "item": item,
            "registrant": registrant,
            "status": status,
            "tracking_source": registrant.get("tracking_source"),
            "received_at": received,
        }
    else:
        participant = obj.get("participant")
        if not isinstance(participant, Mapping):
            raise SkipRecord(f"{event} without participant")
        record = {
            "kind": "participant",
            "item": item,
            "instance": {"uuid": obj.get("uuid"), "start_time": obj.get("start_time")},
            "participant": {
                "user_email": participant.get("email"),
                "name": participant.get("user_name"),
                "registrant_id": participant.get("registrant_id"),
                "join_time": participant.get("join_time"),
            },
            "sessions": 1,
            "received_at": received,
        }
        rid = _text(participant.get("registrant_id"))
        if rid and linked and rid in linked:
            record.update(email=linked[rid], linked=True)
    return map_zoom_record(record, options)


def registrant_external_id(item: Mapping[str, Any], registrant_id: str) -> str:
    """The external id of a registrant's ``webinar_registered`` event."""
    return f"{item['kind']}:{item['id']}:registrant:{registrant_id}"


async def linked_registrants(
    stored: StoredEvents | None, item: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Registrant id -> email of the lead that registered, for the rows' registrant ids
    whose registration is stored (one look-up for all of them); empty without look-ups."""
    ids = {rid for row in rows if (rid := _text(row.get("registrant_id")))}
    if stored is None or not ids:
        return {}
    wanted = {registrant_external_id(item, rid): rid for rid in ids}
    found: dict[str, str] = {}
    for ref in await stored.find(list(wanted)):
        rid = wanted.get(ref.external_id)
        if rid and ref.event_type == EventType.WEBINAR_REGISTERED.value and ref.email:
            found[rid] = ref.email
    return found


def webhook_participant(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(item, participant row) of a participant webhook, for linking; None for others."""
    event = body.get("event")
    payload = body.get("payload")
    obj = payload.get("object") if isinstance(payload, Mapping) else None
    if not isinstance(event, str) or not isinstance(obj, Mapping):
        return None
    kind, _, action = event.partition(".")
    participant = obj.get("participant")
    if kind not in ("webinar", "meeting") or action not in WEBHOOK_PARTICIPATION:
        return None
    if not isinstance(participant, Mapping) or obj.get("id") in (None, ""):
        return None
    return {"kind": kind, "id": str(obj["id"])}, dict(participant)


def collapse_participants(
    rows: list[dict[str, Any]],
    seen: set[str],
    item: dict[str, Any],
    instance: dict[str, Any],
    linked: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One record per person on this page (Zoom lists one row per join session).

    A person is their registrant's email when the row's ``registrant_id`` is in ``linked``
    (registrant id -> normalised email of the lead that registered), else the row's own
    normalised email. ``seen`` holds the people of this instance already yielded on earlier
    pages (hashes, so memory is one short string per attendee). The event time is their
    earliest admitted session on the page where they first appear; ``sessions`` and
    ``duration_seconds`` count that page's rows. Rows with no email either way stay one
    record each (mapping skips them).
    """
    linked = linked or {}
    people: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    for row in rows:
        rid = _text(row.get("registrant_id"))
        via = linked.get(rid) if rid else None
        email = via or normalise_email(row.get("user_email") or None)
        admitted = row.get("status", "in_meeting") != "in_waiting_room"
        base = {"kind": "participant", "item": item, "instance": instance}
        if email is None:
            records.append({**base, "participant": row, "sessions": 1, "admitted": admitted})
            continue
        key = person_key(email)
        if key in seen:
            continue
        person = people.get(key)
        if person is None:
            person = {
                **base,
                "participant": row,
                "email": email,
                "linked": False,
                "sessions": 0,
                "duration_seconds": 0,
                "admitted": False,
            }
            people[key] = person
            records.append(person)
        person["linked"] = person["linked"] or via is not None
        person["sessions"] += 1
        duration = row.get("duration")
        person["duration_seconds"] += int(duration) if isinstance(duration, int | float) else 0
        if admitted and (
            not person["admitted"]
            or str(row.get("join_time")) < str(person["participant"].get("join_time"))
        ):
            person["participant"] = row  # the earliest admitted session is the attendance time
        person["admitted"] = person["admitted"] or admitted
    seen.update(k for k, p in people.items() if p["admitted"])
    return records
