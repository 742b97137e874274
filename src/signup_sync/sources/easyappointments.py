"""EasyAppointments: appointments (with their customers and services) -> funnel events.

``mode="api"`` reads the REST API v1 (source-apis.md §1); ``mode="mysql"`` reads the EA
database directly (``easyappointments_mysql``), as existing deployments do. Both turn an
appointment into one flat record (``appointment_record``), so ``map_appointment`` - and
``map_webhook`` for EA's ``{"action", "payload"}`` webhooks - give identical events.

API strategy (the API has no updated-since filter): each run re-reads a date window
(``from=today-N``, ids up to the high-water mark) to catch status changes and newly past
appointments, then reads rows above the id high-water mark (``sort=id`` ascending).
Customers come attached to each appointment (``with=customer,service,provider``, EA >= 1.5);
for servers that ignore ``with`` they are fetched one by one into a bounded per-run LRU.
"""

from __future__ import annotations

import re
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import phonenumbers
from pydantic import Field, field_validator, model_validator

from signup_sync.events.records import UTM_FIELDS, EventRecord
from signup_sync.leads.identity import normalise_email
from signup_sync.sources.base import Page, SourceConfig, SourceContext
from signup_sync.sources.easyappointments_deletions import (
    GONE,
    api_deletions,
    check_due,
    map_gone,
)
from signup_sync.sources.errors import (
    FatalSourceError,
    PaginationLoopError,
    RetriableSourceError,
    SkipRecord,
)
from signup_sync.sources.http import SourceHttp
from signup_sync.vocabulary import EventType, SourceType

SOURCE = SourceType.EASYAPPOINTMENTS.value
CustomerField = Literal[
    "notes",
    "custom_field_1",
    "custom_field_2",
    "custom_field_3",
    "custom_field_4",
    "custom_field_5",
]
CUSTOMER_FIELDS: tuple[str, ...] = get_args(CustomerField)
_CLICK_IDS = ("gclid", "fbclid", "msclkid")


class EasyAppointmentsConfig(SourceConfig):
    """Non-secret settings. Statuses are compared case-insensitively (EA's are free text)."""

    mode: Literal["api", "mysql"] = "api"
    base_url: str = "http://localhost/index.php/api/v1/"
    auth: Literal["bearer", "basic"] = "bearer"
    api_token_env: str | None = None  # default EASYAPPOINTMENTS_API_TOKEN for bearer
    username_env: str | None = None  # defaults EASYAPPOINTMENTS_USERNAME / _PASSWORD for basic
    password_env: str | None = None
    page_length: int = Field(500, ge=1, le=1000)  # EA enforces no maximum; PHP memory does
    min_interval_seconds: float = Field(1.25, ge=0)  # EA allows 100 requests / 120 s per IP
    rate_limit_window_seconds: float = Field(120.0, ge=0)  # wait after EA's bare 429
    rescan_days: int | None = Field(14, ge=0, le=3650)  # None: no window re-read
    use_with: bool = True
    customer_cache_size: int = Field(5000, ge=1)
    # The zone EA writes book/create/update times in: 1.6 its default_timezone setting,
    # 1.5 PHP's date.timezone. Required: no guess (see docs/connectors.md).
    site_timezone: str
    use_provider_timezone: bool = True  # start/end are the provider's local wall time
    infer_completed: bool = False  # EA has no attendance flag: past + not cancelled = completed
    cancelled_statuses: list[str] = ["Cancelled"]
    draft_statuses: list[str] = ["Draft"]
    completed_statuses: list[str] = []
    utm_fields: list[CustomerField] = []  # customer fields holding utm_source=...&...
    default_phone_region: str | None = None
    # EA >= 1.5.1 sends its webhook secret verbatim in this header; None: webhooks refused.
    webhook_secret_env: str | None = None
    webhook_header: str = Field("X-Ea-Token", pattern=r"^[A-Za-z0-9-]{1,64}$")
    # Direct-MySQL mode (EA >= 1.5: needs update_datetime).
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "easyappointments"
    mysql_database: str = "easyappointments"
    mysql_password_env: str | None = None
    table_prefix: str = "ea_"
    mysql_batch: int = Field(1000, ge=1, le=10000)
    mysql_overlap_seconds: int = Field(120, ge=0)
    # Deletions at the source (easyappointments_deletions): how often ids are compared
    # (None: never) and the id-only scan's page length (API mode).
    deletion_check_hours: float | None = Field(24.0, ge=0)
    id_scan_length: int = Field(5000, ge=1, le=100_000)

    @field_validator("site_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("table_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]{0,32}", value):
            raise ValueError("table_prefix may hold only letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _auth_defaults(self) -> EasyAppointmentsConfig:
        if self.mode == "api" and self.auth == "bearer" and self.api_token_env is None:
            self.api_token_env = "EASYAPPOINTMENTS_API_TOKEN"  # noqa: S105 - a variable name
        if self.mode == "api" and self.auth == "basic":
            self.username_env = self.username_env or "EASYAPPOINTMENTS_USERNAME"
            self.password_env = self.password_env or "EASYAPPOINTMENTS_PASSWORD"
        return self


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def secret(ctx: SourceContext, key: str, env: str | None) -> str:
    """A resolved secret, or a fatal error naming its variable (never the value)."""
    value = ctx.secrets.get(key)
    if not value:
        raise FatalSourceError(f"EasyAppointments: environment variable {env} is not set")
    return value


# ---- records: one flat shape for API, MySQL and webhook appointments -----------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
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
            "id": _int(row.get("id")),
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
        "id": _int(row.get("id")),
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
        "id": _int(row.get("id")),
        "hash": row.get("hash"),
        "book": _stamp(row.get("book_datetime" if raw else "book")),
        "start": _stamp(row.get("start_datetime" if raw else "start")),
        "end": _stamp(row.get("end_datetime" if raw else "end")),
        "status": row.get("status"),
        "service_id": _int(row.get("id_services" if raw else "serviceId")),
        "service_name": service_name,
        "provider_id": _int(row.get("id_users_provider" if raw else "providerId")),
        "provider_timezone": provider_timezone,
        "customer": customer_fields(customer),
        "deleted": deleted,
    }


def _stamp(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return _text(value)


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
        value = _text(customer.get(name))
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
    phone = _text(customer.get("phone"))
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
        "first_name": _text(customer.get("first_name")),
        "last_name": _text(customer.get("last_name")),
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
    if not isinstance(payload, Mapping) or _int(payload.get("id")) is None:
        raise SkipRecord("malformed webhook payload")
    if payload.get("is_unavailability") in (True, 1, "1"):
        return []
    record = appointment_record(
        payload,
        customer=customer,
        service_name=_text((service or {}).get("name")),
        provider_timezone=_text((provider or {}).get("timezone")),
        deleted=action == "appointment_delete",
    )
    return map_appointment(record, config, now)


# ---- REST API reader -----------------------------------------------------------------------


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
                name = _text(_obj(row.get("service")).get("name"))
                tz = _text(_obj(row.get("provider")).get("timezone"))
            else:
                customer = await self.customer(_int(row.get("customerId")))
                name = (await self._services()).get(_int(row.get("serviceId")) or 0)
                tz = (await self._zones()).get(_int(row.get("providerId")) or 0)
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
            found.update({r["id"]: v for r in rows if (v := _text(r.get(key)))})
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


class EasyAppointmentsConnector:
    """The registered connector: API or direct-MySQL reader, one mapping."""

    source_type: ClassVar[str] = SOURCE
    config_model: ClassVar[type[SourceConfig]] = EasyAppointmentsConfig

    def __init__(self, ctx: SourceContext) -> None:
        if not isinstance(ctx.config, EasyAppointmentsConfig):
            raise FatalSourceError("EasyAppointments: config is not an EasyAppointmentsConfig")
        self.ctx, self.config = ctx, ctx.config
        self.reader: Any = None

    async def pages(self) -> AsyncIterator[Page]:
        await self.aclose()
        if self.config.mode == "mysql":
            from signup_sync.sources.easyappointments_mysql import MysqlReader

            self.reader = MysqlReader(self.ctx, self.config)
        else:
            self.reader = ApiReader(self.ctx, self.config)
        async for page in self.reader.pages():
            yield page

    def map_record(self, record: Any) -> list[EventRecord]:
        if record.get("kind") == GONE:
            return map_gone(record)
        return map_appointment(record, self.config, self.ctx.run_started_at)

    async def aclose(self) -> None:
        if self.reader is not None:
            await self.reader.aclose()
            self.reader = None
