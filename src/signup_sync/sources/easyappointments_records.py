"""EasyAppointments records: one flat shape for API, MySQL and webhook appointments, and
its mapping to funnel events (``map_appointment``; ``map_webhook`` for EA's webhooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import phonenumbers

from signup_sync.events.records import UTM_FIELDS, EventRecord
from signup_sync.leads.identity import normalise_email
from signup_sync.sources.easyappointments_config import (
    CUSTOMER_FIELDS,
    SOURCE,
    EasyAppointmentsConfig,
    zone,
)
from signup_sync.sources.errors import SkipRecord
from signup_sync.vocabulary import EventType

_CLICK_IDS = ("gclid", "fbclid", "msclkid")


def text_of(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def int_of(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def customer_fields(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A customer as API encoding (camelCase) or raw ``ea_users`` row (snake_case)."""
    if not row:
        return None
    if "firstName" in row or "customField1" in row:
        out = {
            "id": int_of(row.get("id")),
            "first_name": row.get("firstName"),
            "last_name": row.get("lastName"),
            "email": row.get("email"),
            "phone": row.get("phone"),
            "notes": row.get("notes"),
        }
        for n in range(1, 6):
            out[f"custom_field_{n}"] = row.get(f"customField{n}")
        return out
    out = {
        "id": int_of(row.get("id")),
        "first_name": row.get("first_name"),
        "last_name": row.get("last_name"),
        "email": row.get("email"),
        "phone": row.get("phone_number") or row.get("mobile_number"),
    }
    out.update({name: row.get(name) for name in CUSTOMER_FIELDS})
    return out


def appointment_record(
    row: Mapping[str, Any],
    *,
    customer: Mapping[str, Any] | None,
    service_name: str | None,
    provider_timezone: str | None,
    deleted: bool = False,
) -> dict[str, Any]:
    """The flat record ``map_appointment`` reads, from an API appointment or a raw DB row."""
    raw = "start_datetime" in row
    return {
        "id": int_of(row.get("id")),
        "hash": row.get("hash"),
        "book": _stamp(row.get("book_datetime" if raw else "book")),
        "start": _stamp(row.get("start_datetime" if raw else "start")),
        "end": _stamp(row.get("end_datetime" if raw else "end")),
        "status": row.get("status"),
        "service_id": int_of(row.get("id_services" if raw else "serviceId")),
        "service_name": service_name,
        "provider_id": int_of(row.get("id_users_provider" if raw else "providerId")),
        "provider_timezone": provider_timezone,
        "customer": customer_fields(customer),
        "deleted": deleted,
    }


def _stamp(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return text_of(value)


def local_to_utc(value: str | None, tz: ZoneInfo) -> datetime | None:
    """EA's naive ``Y-m-d H:i:s`` wall time in ``tz`` -> aware UTC (DST gaps take fold=0)."""
    if not value or value.startswith("0000"):
        return None
    try:
        naive = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _e164(phone: str | None, region: str | None) -> str | None:
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _tracking(customer: Mapping[str, Any], fields: list[str]) -> dict[str, str]:
    """``utm_source=x&utm_campaign=y`` stored in configured customer fields."""
    found: dict[str, str] = {}
    for name in fields:
        value = text_of(customer.get(name))
        if not value or "=" not in value:
            continue
        for key, val in parse_qsl(value.replace("\n", "&").replace(";", "&")):
            key = key.strip().lower()
            if key in (*UTM_FIELDS, *_CLICK_IDS) and val.strip() and key not in found:
                found[key] = val.strip().lower() if key.startswith("utm_") else val.strip()
    return found


def map_appointment(
    record: Mapping[str, Any], config: EasyAppointmentsConfig, now: datetime
) -> list[EventRecord]:
    """``appointment_booked`` (+ ``appointment_completed``) for one flat appointment record."""
    status = (record.get("status") or "").strip()
    folded = status.casefold()
    if folded in {s.strip().casefold() for s in config.draft_statuses}:
        raise SkipRecord("draft appointment")
    customer = record.get("customer")
    if not customer:
        raise SkipRecord("customer not found")
    email = normalise_email(customer.get("email"))
    phone = text_of(customer.get("phone"))
    phone_e164 = _e164(phone, config.default_phone_region)
    if email is None and phone_e164 is None:
        raise SkipRecord("no email")
    tz_name = config.site_timezone
    if config.use_provider_timezone and record.get("provider_timezone"):
        try:
            zone(record["provider_timezone"])
            tz_name = record["provider_timezone"]
        except ValueError:
            pass  # an unknown provider zone falls back to the site's
    start = local_to_utc(record.get("start"), zone(tz_name))
    if start is None:
        raise SkipRecord("bad start time")
    end = local_to_utc(record.get("end"), zone(tz_name)) or start
    booked_at = local_to_utc(record.get("book"), zone(config.site_timezone)) or start
    cancelled = bool(record.get("deleted")) or folded in {
        s.strip().casefold() for s in config.cancelled_statuses
    }
    service_id = record.get("service_id")
    metadata = {
        "item": {
            "kind": "appointment",
            "id": str(service_id) if service_id is not None else None,
            "name": record.get("service_name"),
        },
        "appointment_id": str(record["id"]),
        "status": status or None,
        "start": record.get("start"),
        "end": record.get("end"),
        "timezone": tz_name,
        "provider_id": record.get("provider_id"),
    }
    if record.get("deleted"):
        metadata["deleted"] = True
    common: dict[str, Any] = {
        "source_type": SOURCE,
        "email": email,
        "first_name": text_of(customer.get("first_name")),
        "last_name": text_of(customer.get("last_name")),
        "phone": phone,
        "phone_e164": phone_e164,
        "external_id": f"appointment:{record['id']}",
        "metadata": metadata,
        "status": "cancelled" if cancelled else "active",
        **_tracking(customer, list(config.utm_fields)),
    }
    events = [
        EventRecord(event_type=EventType.APPOINTMENT_BOOKED.value, occurred_at=booked_at, **common)
    ]
    by_status = folded in {s.strip().casefold() for s in config.completed_statuses}
    # A past appointment cancelled afterwards (EA's way to mark a no-show) still gets the
    # event, as cancelled, so that an earlier inferred completion is withdrawn.
    if by_status or (config.infer_completed and end <= now):
        events.append(
            EventRecord(
                event_type=EventType.APPOINTMENT_COMPLETED.value,
                occurred_at=min(end, now),
                **common,
            )
        )
    return events


def map_webhook(
    body: Mapping[str, Any],
    config: EasyAppointmentsConfig,
    *,
    now: datetime,
    customer: Mapping[str, Any] | None = None,
    service: Mapping[str, Any] | None = None,
    provider: Mapping[str, Any] | None = None,
) -> list[EventRecord]:
    """Events for an EA webhook body ``{"action", "payload": raw DB row}``, as a sync gives.

    The payload only carries ``id_users_customer``: pass the customer (raw row or API
    object, e.g. from ``GET customers/{id}``), and the service/provider for name and zone.
    ``appointment_delete`` marks the appointment's events cancelled. Other actions: none.
    """
    action = body.get("action")
    payload = body.get("payload")
    if action not in ("appointment_save", "appointment_delete"):
        return []
    if not isinstance(payload, Mapping) or int_of(payload.get("id")) is None:
        raise SkipRecord("malformed webhook payload")
    if payload.get("is_unavailability") in (True, 1, "1"):
        return []
    record = appointment_record(
        payload,
        customer=customer,
        service_name=text_of((service or {}).get("name")),
        provider_timezone=text_of((provider or {}).get("timezone")),
        deleted=action == "appointment_delete",
    )
    return map_appointment(record, config, now)
