"""CSV import: read a file in chunks, validate each row as an event, ingest, report per row.

Idempotent like the API: a row's external id is its mapped id column, else a hash of its
normalised content, so re-importing the same file (or the same rows in another file)
stores nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.bounds import zone
from signup_sync.errors import InvalidInput
from signup_sync.events.records import EventRecord
from signup_sync.events.schemas import FieldError, to_record
from signup_sync.events.service import ingest
from signup_sync.imports.schemas import (
    IMPORT_COLUMNS,
    CsvRowIn,
    ImportOptions,
    ImportOut,
    RowResult,
)
from signup_sync.leads.identity import normalise_email, normalise_phone
from signup_sync.sources.csv_import import (
    DEFAULT_CHUNK_ROWS,
    CsvFormatError,
    CsvRows,
    Row,
    content_hash,
    overlong_message,
    parse_timestamp,
    split_name,
    text_from_bytes,
)

Chunk = Sequence[tuple[Row, dict[str, str]]]
_PASSTHROUGH = (
    "first_name",
    "last_name",
    "company",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
    "landing_page",
    "gclid",
    "fbclid",
    "msclkid",
)


def open_csv(stream: TextIO, options: ImportOptions) -> CsvRows:
    """Read the header and resolve the columns; a file we can't use is a 422 saying why."""
    try:
        rows = CsvRows(stream, IMPORT_COLUMNS, options.columns)
    except CsvFormatError as exc:
        stream.close()
        raise InvalidInput(f"Cannot import this file: {exc}", field="file") from None
    columns = rows.columns
    if not (columns.has("email") or columns.has("phone")):
        rows.close()
        found = ", ".join(repr(h) for h in columns.headers)
        hint = (
            " (it looks like JSON, not CSV)" if found.lstrip("'\"").startswith(("{", "[")) else ""
        )
        raise InvalidInput(
            f"Cannot import this file: no email or phone column{hint}; its columns are {found}. "
            'Name one "Email" or "Phone", or map it, e.g. {"Correo": "email"}',
            field="file",
        )
    return rows


def _reject(number: int, field: str, message: str) -> RowResult:
    return RowResult(
        row=number, status="rejected", errors=[FieldError(field=field, message=message)]
    )


def _errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(p) for p in err["loc"]) or "row",
            message=str(err["msg"]).removeprefix("Value error, "),
        )
        for err in exc.errors()
    ]


def row_event(
    row: Row, extras: dict[str, str], options: ImportOptions, headers: dict[str, str]
) -> tuple[EventRecord | None, RowResult | None]:
    """Validate one row; returns (record, None) or (None, the rejection with its reasons)."""
    number, values = row
    email = normalise_email(values.get("email"))
    phone = values.get("phone") or None
    phone_e164 = normalise_phone(phone, options.default_region)
    if email is None and phone is None:
        return None, _reject(number, "email", "each row needs an email or a phone")
    if email is None and phone_e164 is None:
        return None, _reject(
            number,
            "phone",
            "not a valid phone number; write it with its +country code or set default_region",
        )
    data: dict[str, Any] = {
        "source_type": options.source_type,
        "event_type": values.get("event_type") or options.default_event_type,
        "email": email,
        "phone": phone,
    }
    for name in _PASSTHROUGH:
        if values.get(name):
            data[name] = values[name]
    if "first_name" not in data and "last_name" not in data:
        first, last = split_name(values.get("name"))
        data.update({k: v for k, v in (("first_name", first), ("last_name", last)) if v})
    raw_time = values.get("occurred_at") or ""
    if raw_time:
        try:
            data["occurred_at"], _ = parse_timestamp(
                raw_time, zone(options.timezone), options.date_format
            )
        except ValueError as exc:
            return None, _reject(
                number, "occurred_at", f"column {headers.get('occurred_at')!r}: {exc}"
            )
    identity = {
        "email": email,
        "phone": phone_e164 or phone,
        **{k: (data.get(k) or "").casefold() or None for k in _PASSTHROUGH},
        "occurred_at": raw_time or None,
    }
    data["external_id"] = values.get("external_id") or f"csv:{content_hash(identity)}"
    metadata: dict[str, Any] = {"csv_row": number}
    if extras:
        metadata["columns"] = extras
    data["metadata"] = metadata
    try:
        # Absent values are left out, not sent as None (EventIn's length checks reject None).
        valid = CsvRowIn.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        return None, RowResult(row=number, status="rejected", errors=_errors(exc))
    record = to_record(valid)
    record.phone_e164 = phone_e164
    return record, None


async def import_chunk(
    session: AsyncSession, chunk: Chunk, options: ImportOptions, rows: CsvRows
) -> list[RowResult]:
    """Validate and ingest one chunk of ``rows``; results in row order. Does not commit."""
    headers = headers_of(rows)
    width = len(rows.columns.headers)
    results: list[RowResult] = []
    valid: list[tuple[int, EventRecord]] = []
    for row, extras in chunk:
        cells = rows.overlong.get(row[0])
        if cells is not None:
            # Its cells are probably shifted: storing them would put values in wrong fields.
            results.append(_reject(row[0], "row", overlong_message(cells, width)))
            continue
        record, rejected = row_event(row, extras, options, headers)
        if record is not None:
            valid.append((row[0], record))
        elif rejected is not None:
            results.append(rejected)
    outcomes = await ingest(session, [record for _, record in valid])
    for (number, record), outcome in zip(valid, outcomes, strict=True):
        erased = outcome.status == "erased"
        results.append(
            RowResult(
                row=number,
                status=outcome.status,
                event_id=None if erased else outcome.event_id,
                lead_id=None if erased else outcome.lead_id,
                external_id=record.external_id,
            )
        )
    results.sort(key=lambda r: r.row)
    return results


def summarise(options: ImportOptions, rows: CsvRows, results: list[RowResult]) -> ImportOut:
    counts = {status: 0 for status in ("accepted", "duplicate", "erased", "rejected")}
    for result in results:
        counts[result.status] += 1
    return ImportOut(
        source_type=options.source_type,
        event_type=options.default_event_type,
        rows=len(results),
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        erased=counts["erased"],
        rejected=counts["rejected"],
        columns=rows.columns.used(),
        results=results,
    )


def headers_of(rows: CsvRows) -> dict[str, str]:
    """{field: header} for messages that name the column at fault."""
    return {field: header for header, field in rows.columns.used().items()}


async def import_csv(session: AsyncSession, data: bytes, options: ImportOptions) -> ImportOut:
    """Import a whole uploaded file in the caller's transaction (the API's unit of work)."""
    rows = open_csv(text_from_bytes(data), options)
    results: list[RowResult] = []
    try:
        while chunk := rows.chunk(DEFAULT_CHUNK_ROWS):
            results.extend(await import_chunk(session, chunk, options, rows))
    except CsvFormatError as exc:
        raise InvalidInput(f"Cannot import this file: {exc}", field="file") from None
    finally:
        rows.close()
    return summarise(options, rows, results)


def parse_options(raw: dict[str, Any]) -> ImportOptions:
    """Options from query and form fields; a bad one is a 422 naming it."""
    try:
        return ImportOptions.model_validate(raw)
    except ValidationError as exc:
        errors = [e.model_dump() for e in _errors(exc)]
        first = errors[0]
        raise InvalidInput(
            f"Invalid {first['field']}: {first['message']}", field=first["field"], errors=errors
        ) from None
