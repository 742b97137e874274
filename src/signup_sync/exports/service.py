"""CSV exports that stream: constant memory whatever the row count.

Each batch is one keyset query (rows after the last id seen) in its own short session, so
a long download never holds a connection (SQLite has only one) or a transaction open
between batches. The export is therefore not one snapshot: rows written while it runs
may or may not appear, and none appears twice.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync.exports import repository
from signup_sync.leads.schemas import LeadFilter, stage_name

BATCH_ROWS = 2000


class ExportKind(StrEnum):
    LEADS = "leads"
    EVENTS = "events"
    CONVERSIONS = "conversions"


def _with_email(columns: tuple[str, ...]) -> tuple[str, ...]:
    at = columns.index("lead_id") + 1
    return (*columns[:at], "email", *columns[at:])


HEADERS: dict[ExportKind, tuple[str, ...]] = {
    ExportKind.LEADS: (*repository.LEAD_COLUMNS[:7], "stage_name", *repository.LEAD_COLUMNS[7:]),
    ExportKind.EVENTS: _with_email(repository.EVENT_COLUMNS),
    ExportKind.CONVERSIONS: _with_email(repository.CONVERSION_COLUMNS),
}

# A phone number or a signed number is data; anything else opening with these is a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-][\d\s().-]*$")


def cell(value: Any) -> str:
    """One CSV cell: ISO 8601 times, plain decimals, and text a spreadsheet will not run."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    # Names and UTMs come from outside: a leading '=' would run as a formula in Excel.
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _row(kind: ExportKind, mapping: Any) -> list[str]:
    values = dict(mapping)
    if kind is ExportKind.LEADS:
        values["stage_name"] = stage_name(values["stage"])
    return [cell(values[name]) for name in HEADERS[kind]]


async def csv_chunks(
    factory: async_sessionmaker[AsyncSession],
    kind: ExportKind,
    f: LeadFilter,
    *,
    batch_rows: int = BATCH_ROWS,
) -> AsyncIterator[str]:
    """The CSV text, a header then one chunk per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS[kind])
    yield buffer.getvalue()
    after_id = 0
    while True:
        async with factory() as session:
            rows = await repository.batch(session, kind, f, after_id, batch_rows)
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(_row(kind, row._mapping) for row in rows)
        yield buffer.getvalue()
        if len(rows) < batch_rows:
            return
        after_id = rows[-1].id
