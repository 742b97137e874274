"""Posh.VIP: the organiser's order/attendee export (CSV), since Posh publishes no API.

The file comes from an upload (``SourceContext.upload``), a path on this machine or a URL
(fetched with SourceHttp). Columns follow our working contract (source-apis.md §4.3) and
each can be remapped in the config. Funnel mapping (§4.4, as the product decided):

* an order row -> ``event_registered`` (``posh:order:{order_number}[:{ticket_id}]``), paid
  or RSVP alike; the amount goes into metadata. Posh payments are not product conversions,
  so no ``converted`` event is made.
* ``checked_in`` -> ``event_attended`` (``...:attended``), at the event's start.
* a kickback referrer (or a host / tracking link, when configured) -> ``referral_received``
  (``posh:order:{order_number}:referral``).
* ``pending`` / ``denied`` / ``refunded`` / ``cancelled`` (and ``expired``) orders keep
  their events with that status: stored, not counted; a re-sync flips them when the
  order changes. Unknown statuses are skipped with a reason (map them in ``status_map``).
* no order number -> a hash of (event name, event date, email or phone, purchased at),
  flagged with ``metadata.order_key = "hash"``.

Paging: 500 rows per Page; the cursor is the file's SHA-256 plus the rows done, so a
crash resumes at the next row of the same file and a new export is read from the top
(ingestion is idempotent on the external ids). ``ctx.since``/``ctx.until`` are not
applied: an export is already the slice the organiser chose. A URL is downloaded whole
(capped by ``max_file_bytes``) and then parsed lazily; an upload or a path is never copied.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TextIO
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from signup_sync.events.records import EventRecord
from signup_sync.leads.identity import normalise_email, normalise_phone, validate_normalised_email
from signup_sync.sources.access import FileRefused
from signup_sync.sources.base import Page, SourceConfig, SourceContext
from signup_sync.sources.csv_import import (
    CsvFormatError,
    CsvRows,
    clip,
    overlong_message,
    parse_flag,
    parse_timestamp,
    sha256_bytes,
    sha256_path,
    split_name,
    text_from_bytes,
    text_from_path,
    zone,
)
from signup_sync.sources.errors import FatalSourceError, SkipRecord
from signup_sync.sources.http import SourceHttp
from signup_sync.sources.secrets import require

SOURCE = "poshvip"

# Our canonical columns (§4.3) and the header spellings recognised without a mapping.
POSH_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_number": ("order number", "order no", "order #", "order id", "order"),
    "ticket_id": ("ticket id", "ticket number", "ticket #"),
    "event_id": ("event id",),
    "event_name": ("event", "event title", "event name"),
    "event_date": ("event date", "event start", "event start date", "start date"),
    "first_name": ("first name", "firstname", "first"),
    "last_name": ("last name", "lastname", "last", "surname"),
    "name": ("name", "full name", "buyer name", "attendee name"),
    "email": ("email", "e-mail", "email address", "buyer email"),
    "phone": ("phone", "phone number", "mobile", "cell", "buyer phone"),
    "ticket_type": ("ticket type", "ticket name", "ticket", "tier"),
    "quantity": ("quantity", "qty", "tickets"),
    "total_paid": ("total paid", "amount paid", "total", "amount", "order total"),
    "currency": ("currency",),
    "order_status": ("order status", "status"),
    "checked_in": ("checked in", "check in", "scanned"),
    "tracking_link": ("tracking link", "tracking"),
    "host": ("host", "promoter"),
    "kickback_referrer": ("kickback referrer", "kickback", "referred by"),
    "purchased_at": ("purchased at", "purchase date", "order date", "date purchased", "created at"),
    "utm_source": (),
    "utm_medium": (),
    "utm_campaign": (),
    "utm_term": (),
    "utm_content": (),
}
REQUIRED = ("event_name", "event_date", "purchased_at")

# order_status (lower-cased) -> event status; "active" moves the funnel, the rest are kept.
STATUSES: dict[str, str] = {
    "": "active",
    "approved": "active",
    "paid": "active",
    "complete": "active",
    "completed": "active",
    "confirmed": "active",
    "rsvp": "active",
    "partially refunded": "active",
    "partial refund": "active",
    "pending": "pending",
    "denied": "denied",
    "declined": "denied",
    "refunded": "refunded",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "expired": "expired",
    "lapsed": "expired",
}
_STATUS_VALUE = re.compile(r"^[a-z_]{1,16}$")

# An order status value short and plain enough to repeat in a skip reason.
_STATUS_WORD = re.compile(r"[A-Za-z][A-Za-z _-]{0,31}")


class PoshvipConfig(SourceConfig):
    """Where the export is and how to read it. Nothing here is secret."""

    base_url: str = Field(default="", description="prefix for a relative file_url")
    file_url: str = Field(default="", description="URL of the export (absolute or under base_url)")
    file_path: str = Field(default="", description="path of the export on this machine")
    file_token_env: str | None = Field(
        default=None, description="env variable with a Bearer token for file_url, if it needs one"
    )
    timezone: str = Field(default="UTC", description="organiser time zone of offset-less times")
    default_region: str = Field(default="US", description="country of phones written without +")
    date_format: str | None = Field(default=None, description="strptime format; default: ISO/US")
    columns: dict[str, str] = Field(
        default_factory=dict, description="{header in the export: our column} overrides"
    )
    status_map: dict[str, str] = Field(
        default_factory=dict, description="{order_status: active|pending|refunded|...} additions"
    )
    host_is_referral: bool = False
    tracking_link_is_referral: bool = False
    # Relayed JSON (POST /webhooks/poshvip): the secret's variable and its field names.
    webhook_secret_env: str | None = None
    relay_columns: dict[str, str] = Field(
        default_factory=dict,
        description="{field of the relayed JSON (dotted for nested): our column}; "
        "default: the same names as the CSV export",
    )
    page_size: int = Field(default=500, ge=1, le=5000)
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("must be a two-letter country code such as US")
        return value.upper()

    @field_validator("relay_columns")
    @classmethod
    def _relay_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, column in value.items():
            if column != "ignore" and column not in POSH_COLUMNS:
                raise ValueError(f"{name!r}: {column!r} is not one of our columns")
        return value

    @field_validator("status_map")
    @classmethod
    def _status_map(cls, value: dict[str, str]) -> dict[str, str]:
        for raw, status in value.items():
            if not _STATUS_VALUE.match(status):
                raise ValueError(f"{raw!r}: status must be 1-16 lower-case letters")
        return {k.strip().lower(): v for k, v in value.items()}


def _amount(raw: str | None) -> Decimal | None:
    if not raw:
        return None
    try:
        return Decimal(re.sub(r"[^\d.\-]", "", raw))
    except InvalidOperation:
        return None


def _hash_key(event_name: str, event_date: str, who: str, purchased_at: str) -> str:
    joined = "\x1f".join((event_name, event_date, who, purchased_at))
    return hashlib.sha256(joined.encode()).hexdigest()[:24]


class PoshvipConnector:
    """Reads one Posh export, page by page; never touches the database."""

    source_type: ClassVar[str] = SOURCE
    config_model: ClassVar[type[SourceConfig]] = PoshvipConfig
    # An export is uploaded (POST /sync/poshvip, --file) unless the config names one.
    requires_upload: ClassVar[bool] = True

    @staticmethod
    def has_stored_file(config: Mapping[str, Any]) -> bool:
        """A configured path or URL: the scheduler can sync this source on its own."""
        return any(config.get(key) for key in ("file_path", "file_url", "base_url"))

    def __init__(self, ctx: SourceContext) -> None:
        assert isinstance(ctx.config, PoshvipConfig)
        self.ctx = ctx
        self.config: PoshvipConfig = ctx.config
        self.tz = ZoneInfo(self.config.timezone)
        self.statuses = {**STATUSES, **self.config.status_map}
        self._http: SourceHttp | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _open(self) -> tuple[str, Callable[[], TextIO]]:
        """The export's SHA-256 and a way to open it as text."""
        cfg = self.config
        if self.ctx.upload is not None:
            data = self.ctx.upload
            return sha256_bytes(data), lambda: text_from_bytes(data)
        if cfg.file_path:
            try:
                path = self.ctx.access.import_path(cfg.file_path)
            except FileRefused as exc:
                raise FatalSourceError(f"poshvip: config.file_path refused: {exc}") from None
            try:
                digest = await asyncio.to_thread(sha256_path, path)
            except OSError:
                raise FatalSourceError(
                    f"poshvip: cannot read the export file {cfg.file_path}"
                ) from None
            return digest, lambda: text_from_path(path)
        if cfg.file_url or cfg.base_url:
            data = await self._download()
            return sha256_bytes(data), lambda: text_from_bytes(data)
        raise FatalSourceError(
            "poshvip: no export to read: upload the file or set file_path or file_url"
        )

    async def _download(self) -> bytes:
        cfg = self.config
        headers = {"Accept": "text/csv, text/plain;q=0.9, */*;q=0.5"}
        if cfg.file_token_env:
            token = require(self.ctx.secrets, "file_token", "poshvip", cfg.file_token_env)
            headers["Authorization"] = f"Bearer {token}"
        self._http = SourceHttp(
            self.ctx, base_url=cfg.base_url, headers=headers, max_response_bytes=cfg.max_file_bytes
        )
        response, body = await self._http.request("GET", cfg.file_url, what="poshvip export")
        if "html" in response.headers.get("content-type", ""):
            raise FatalSourceError(
                f"poshvip: the export URL answered HTTP {response.status_code} with a web page "
                "(content type text/html), not a CSV file"
            )
        return body

    async def pages(self) -> AsyncIterator[Page]:
        digest, open_text = await self._open()
        cursor = None if self.ctx.force else self.ctx.cursor
        start = 0
        if cursor is not None and cursor.get("sha256") == digest:
            start = int(cursor.get("row", 0))
        try:
            rows = await asyncio.to_thread(CsvRows, open_text(), POSH_COLUMNS, self.config.columns)
        except CsvFormatError as exc:
            raise FatalSourceError(f"poshvip export: {exc}") from None
        try:
            self._check_columns(rows)
            await asyncio.to_thread(rows.skip, start)
            while True:
                try:
                    chunk = await asyncio.to_thread(rows.chunk, self.config.page_size)
                except CsvFormatError as exc:
                    raise FatalSourceError(f"poshvip export: {exc}") from None
                if not chunk:
                    break
                width = len(rows.columns.headers)
                records = [
                    {"_row": number, **values, **self._overlong(rows, number, width)}
                    for (number, values), _ in chunk
                ]
                yield Page(
                    records=records,
                    cursor={"sha256": digest, "row": rows.rows_read},
                    label=f"rows {records[0]['_row']}-{records[-1]['_row']}",
                )
        finally:
            rows.close()

    @staticmethod
    def _overlong(rows: CsvRows, number: int, width: int) -> dict[str, str]:
        cells = rows.overlong.get(number)
        return {} if cells is None else {"_overlong": overlong_message(cells, width)}

    @staticmethod
    def _check_columns(rows: CsvRows) -> None:
        columns = rows.columns
        missing = [name for name in REQUIRED if not columns.has(name)]
        if not (columns.has("email") or columns.has("phone")):
            missing.append("email or phone")
        if missing:
            # Never quote the file's header line: it is whatever the file holds.
            raise FatalSourceError(
                f"poshvip export: missing column(s) {', '.join(missing)}; the file's first "
                f"line has {len(columns.headers)} column(s) and none of them is recognised as "
                "those (map them in config.columns)"
            )

    def map_record(self, record: Mapping[str, Any]) -> list[EventRecord]:
        """One export row -> its events (pure)."""

        def value(name: str) -> str | None:
            raw = record.get(name)
            return str(raw).strip() or None if raw is not None else None

        if record.get("_overlong"):
            # Its cells are probably shifted; reading them would file values under wrong names.
            raise SkipRecord(str(record["_overlong"]))
        metadata: dict[str, Any] = {"row": record.get("_row")}
        email = normalise_email(value("email"))
        if email is not None:
            try:
                email = validate_normalised_email(email)
            except ValueError:
                email, metadata["invalid_email"] = None, True
        phone = value("phone")
        phone_e164 = normalise_phone(phone, self.config.default_region)
        if email is None and phone_e164 is None:
            raise SkipRecord(
                "no valid email or phone" if phone or value("email") else "no email or phone"
            )
        raw_status = (value("order_status") or "").lower()
        status = self.statuses.get(raw_status)
        if status is None:
            # Quoted only when it looks like a status word, never arbitrary file content.
            shown = repr(raw_status) if _STATUS_WORD.fullmatch(raw_status or "") else "(not shown)"
            raise SkipRecord(f"order_status {shown} is unknown; map it in status_map")
        purchased_raw = value("purchased_at") or ""
        try:
            purchased_at, local = parse_timestamp(purchased_raw, self.tz, self.config.date_format)
        except ValueError as exc:
            raise SkipRecord(f"purchased_at {exc}") from None
        if local:
            metadata.update(purchased_at_raw=purchased_raw, timezone=self.config.timezone)
        event_name = value("event_name") or ""
        event_date = value("event_date") or ""
        starts_at = None
        if event_date:
            try:
                starts_at, _ = parse_timestamp(event_date, self.tz, self.config.date_format)
            except ValueError:
                metadata["event_date_unreadable"] = True

        order_number = value("order_number")
        if order_number:
            base = f"posh:order:{order_number}"
        else:
            who = email or phone_e164 or ""
            base = f"posh:order:hash:{_hash_key(event_name, event_date, who, purchased_raw)}"
            metadata["order_key"] = "hash"
        ticket_id = value("ticket_id")
        registered_id = f"{base}:{ticket_id}" if ticket_id else base
        if len(registered_id) > 200:
            registered_id = f"posh:order:hash:{_hash_key(registered_id, '', '', '')}"

        amount = _amount(value("total_paid"))
        metadata.update(
            item={
                "kind": "event",
                "id": value("event_id") or f"{event_name}@{event_date}",
                "name": event_name or None,
            },
            order_number=order_number,
            ticket_id=ticket_id,
            ticket_type=value("ticket_type"),
            quantity=value("quantity"),
            amount=str(amount) if amount is not None else value("total_paid"),
            currency=(value("currency") or "").upper() or None,
            paid=bool(amount and amount > 0),
            order_status=raw_status or None,
            event_date=event_date or None,
            tracking_link=value("tracking_link"),
            host=value("host"),
            kickback_referrer=value("kickback_referrer"),
        )
        metadata = {k: v for k, v in metadata.items() if v is not None and v is not False}
        first, last = value("first_name"), value("last_name")
        if first is None and last is None:
            first, last = split_name(value("name"))
        base_record: dict[str, Any] = {
            "source_type": SOURCE,
            "email": email,
            "first_name": clip(first, 200),
            "last_name": clip(last, 200),
            "phone": clip(phone, 64),
            "phone_e164": phone_e164,
            "status": status,
            "metadata": metadata,
        }
        for utm in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
            base_record[utm] = clip((value(utm) or "").lower(), 255)
        if not base_record["utm_campaign"] and value("tracking_link"):
            # A Posh tracking link is the organiser's campaign link.
            base_record["utm_campaign"] = clip((value("tracking_link") or "").lower(), 255)

        events = [
            EventRecord(
                event_type="event_registered",
                occurred_at=purchased_at,
                external_id=registered_id,
                **base_record,
            )
        ]
        if parse_flag(value("checked_in")):
            events.append(
                EventRecord(
                    event_type="event_attended",
                    occurred_at=starts_at or purchased_at,
                    external_id=f"{registered_id}:attended",
                    **base_record,
                )
            )
        if self._referred(value):
            events.append(
                EventRecord(
                    event_type="referral_received",
                    occurred_at=purchased_at,
                    external_id=f"{base}:referral",
                    **base_record,
                )
            )
        return events

    def _referred(self, value: Callable[[str], str | None]) -> bool:
        return bool(
            value("kickback_referrer")
            or (self.config.host_is_referral and value("host"))
            or (self.config.tracking_link_is_referral and value("tracking_link"))
        )
