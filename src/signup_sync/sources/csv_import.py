"""Reading CSV files lazily, in chunks, through a column mapping.

Shared by the Posh.VIP connector and the CSV import (``POST /import/csv``, ``signup-sync
import-csv``). Pure: no database, no HTTP. Rows are read with the ``csv`` module over a text
stream, so a big file never sits in memory as a list.

A column mapping is ``{header in the file: our field}`` (the CLI's ``--map col=field``).
Headers match case- and punctuation-insensitively (``E-mail``, ``email_address`` and
``Email Address`` are the same), and every field has default aliases; an explicit mapping
wins, and mapping a header to ``ignore`` drops it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TextIO

import orjson

from signup_sync.bounds import utc_in_range
from signup_sync.bounds import zone as zone

IGNORE = "ignore"
HASH_CHUNK = 1024 * 1024
# Rows handed out together: one Page of a sync, one ingest call of an import.
DEFAULT_CHUNK_ROWS = 500
# US-first, like the exports we expect; set an explicit date_format for day-first files.
DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)
_TRUE = frozenset({"yes", "y", "true", "t", "1", "x", "checked in", "checked-in", "attended"})


class CsvFormatError(ValueError):
    """The file cannot be read as the CSV we need; the message says what is wrong."""


Row = tuple[int, dict[str, str]]
"""A data row: its number as a spreadsheet shows it (the header is row 1) and its values."""


def normalise_header(name: str) -> str:
    """``"E-mail Address "`` -> ``"e mail address"``: case, BOM and punctuation don't matter."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.replace("\ufeff", "").casefold()).split())


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which field each column of a file feeds."""

    headers: tuple[str, ...]
    fields: dict[int, str]

    def has(self, field: str) -> bool:
        return field in self.fields.values()

    def used(self) -> dict[str, str]:
        """``{header: field}`` for the columns that are read."""
        return {self.headers[i]: f for i, f in sorted(self.fields.items())}

    def unmapped(self) -> list[int]:
        return [i for i in range(len(self.headers)) if i not in self.fields]


def resolve_columns(
    headers: Sequence[str],
    aliases: Mapping[str, Sequence[str]],
    overrides: Mapping[str, str] | None = None,
) -> ColumnMap:
    """Map each header to a field: explicit ``overrides`` first, then each field's aliases."""
    overrides = overrides or {}
    wanted = {normalise_header(h): field.strip() for h, field in overrides.items()}
    present = [normalise_header(h) for h in headers]
    for header, field in wanted.items():
        if field != IGNORE and field not in aliases:
            raise CsvFormatError(
                f"column mapping: unknown field {field!r}; "
                f"fields are {', '.join(sorted(aliases))} (or {IGNORE})"
            )
        if header not in present:
            raise CsvFormatError(
                f"column mapping: the file has no column {header!r}; "
                f"its columns are {', '.join(repr(h) for h in headers)}"
            )
    fields: dict[int, str] = {}
    for index, header in enumerate(present):
        chosen = wanted.get(header)
        if chosen is None or chosen == IGNORE:
            continue
        if chosen in fields.values():
            raise CsvFormatError(f"column mapping: two columns are mapped to {chosen!r}")
        fields[index] = chosen
    by_alias: dict[str, str] = {}
    for field, names in aliases.items():
        for name in (field, *names):
            by_alias.setdefault(normalise_header(name), field)
    for index, header in enumerate(present):
        if header in wanted or index in fields:
            continue
        alias = by_alias.get(header)
        if alias is not None and alias not in fields.values():
            fields[index] = alias  # the leftmost column wins when two look alike
    return ColumnMap(headers=tuple(headers), fields=fields)


def _encoding(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return "utf-8-sig"  # tolerates the BOM spreadsheet programs write


def text_from_bytes(data: bytes) -> TextIO:
    return io.TextIOWrapper(io.BytesIO(data), encoding=_encoding(data[:2]), newline="")


def text_from_path(path: Path) -> TextIO:
    with path.open("rb") as raw:
        head = raw.read(2)
    return path.open(encoding=_encoding(head), newline="")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        while chunk := raw.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class CsvRows:
    """The data rows of one CSV text stream, as ``{field: value}``, read on demand."""

    def __init__(
        self,
        stream: TextIO,
        aliases: Mapping[str, Sequence[str]],
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._stream = stream
        self.rows_read = 0
        # {row number: its cell count} for rows with non-empty cells past the header's last
        # column: usually a value with an unquoted delimiter, which shifts every cell after it.
        self.overlong: dict[int, int] = {}
        try:
            first = stream.readline()
        except UnicodeDecodeError:
            raise CsvFormatError(_NOT_TEXT) from None
        if not first.strip():
            raise CsvFormatError("the file is empty: a header row is required")
        if "\x00" in first:
            raise CsvFormatError(_NOT_TEXT)
        # Spreadsheets in comma-decimal locales write ';'; tab-separated text is common too.
        delimiter = ","
        if "," not in first:
            delimiter = next((d for d in (";", "\t", "|") if d in first), ",")
        self._reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter)
        header = [h.strip() for h in next(self._reader)]
        self.columns = resolve_columns(header, aliases, overrides)

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            raise CsvFormatError(f"row {self.rows_read + 2}: {_NOT_TEXT}") from None
        except csv.Error as exc:
            raise CsvFormatError(f"row {self.rows_read + 2}: not valid CSV ({exc})") from None

    def _row(self, cells: list[str]) -> dict[str, str]:
        return {
            field: cells[i].strip() if i < len(cells) else ""
            for i, field in self.columns.fields.items()
        }

    def extras(self, cells: list[str]) -> dict[str, str]:
        """Non-empty values of the columns no field reads."""
        out = {}
        for i in self.columns.unmapped():
            if i < len(cells) and cells[i].strip():
                out[self.columns.headers[i] or f"column {i + 1}"] = cells[i].strip()
        return out

    def skip(self, count: int) -> None:
        """Pass over ``count`` data rows (resuming after a crash)."""
        while self.rows_read < count and self._next() is not None:
            self.rows_read += 1

    def chunk(self, size: int = DEFAULT_CHUNK_ROWS) -> list[tuple[Row, dict[str, str]]]:
        """Up to ``size`` more rows (blank lines skipped) with the values of unmapped columns."""
        out: list[tuple[Row, dict[str, str]]] = []
        while len(out) < size:
            cells = self._next()
            if cells is None:
                break
            self.rows_read += 1
            if any(cell.strip() for cell in cells):
                if any(cell.strip() for cell in cells[len(self.columns.headers) :]):
                    self.overlong[self.rows_read + 1] = len(cells)
                out.append(((self.rows_read + 1, self._row(cells)), self.extras(cells)))
        return out

    def __iter__(self) -> Iterator[Row]:
        while batch := self.chunk():
            for row, _ in batch:
                yield row

    def close(self) -> None:
        self._stream.close()


def overlong_message(cells: int, headers: int) -> str:
    """Why a row with more cells than the header is not read (its cells may be shifted)."""
    return (
        f"the row has {cells} cells but the header has {headers}; "
        "quote values that contain the delimiter"
    )


_NOT_TEXT = "not a UTF-8 text file (save it as 'CSV UTF-8')"


def parse_timestamp(raw: str, tz: tzinfo, date_format: str | None = None) -> tuple[datetime, bool]:
    """A UTC time from what a spreadsheet holds; times without an offset are in ``tz``.

    Returns the time and whether ``tz`` was applied. Raises ValueError saying why not.
    """
    text = raw.strip()
    if not text:
        raise ValueError("is empty")
    value: datetime | None = None
    if date_format:
        try:
            value = datetime.strptime(text, date_format)
        except ValueError:
            raise ValueError(f"{text!r} does not match the date format {date_format!r}") from None
    else:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            for fmt in DATE_FORMATS:
                try:
                    value = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
    if value is None:
        raise ValueError(f"{text!r} is not a date/time we can read (use ISO 8601)")
    local = value.tzinfo is None
    if local:
        value = value.replace(tzinfo=tz)
    return utc_in_range(value), local


def parse_flag(raw: str | None) -> bool:
    """yes/no, true/false, 1/0 (and a few spreadsheet spellings); anything else is no."""
    return (raw or "").strip().casefold() in _TRUE


def content_hash(values: Mapping[str, str | None], length: int = 32) -> str:
    """A stable hash of normalised values (order of keys does not matter)."""
    payload = orjson.dumps({k: v for k, v in values.items() if v}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:length]


def clip(value: str | None, length: int) -> str | None:
    """Empty -> None; longer than a column holds -> cut (names, UTM values)."""
    if value is None:
        return None
    value = value.strip()
    return value[:length] or None


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """``"Ana María López"`` -> (``Ana``, ``María López``); for files with one name column."""
    if not full or not full.strip():
        return None, None
    first, _, rest = full.strip().partition(" ")
    return first, rest.strip() or None
