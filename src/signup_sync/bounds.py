"""The documented limits of every input: date-times, whole numbers and time-zone names.

One place, so that a request body, a query string, a CSV cell, a connector record, a ``/v1``
message and a cursor all refuse the same values with the same words. Anything outside these
limits is a 422 naming the field (a skipped record with the reason, for connectors), never an
``OverflowError`` deep in ``astimezone`` or in the database driver.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator

# Wide enough for any real funnel (and any historical import); narrow enough that a bound,
# plus or minus a day or an offset, is still a valid datetime on every backend.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
DATE_RANGE = "1900-01-01T00:00:00Z to 2999-12-31T23:59:59Z"
OUT_OF_RANGE = f"is outside the supported range {DATE_RANGE} (after applying its offset)"

# Ids and counters are SQL BIGINTs.
MAX_BIGINT = 2**63 - 1
# IANA names are at most ~30 characters; a longer one is not a zone (and would reach the
# file system as a too-long path: OSError, not "unknown zone").
MAX_ZONE_NAME = 64


def utc_in_range(value: datetime) -> datetime:
    """``value`` in UTC (a naive time is UTC); ValueError when outside EARLIEST..LATEST."""
    if value.tzinfo is None:
        moment = value.replace(tzinfo=UTC)
    else:
        try:
            moment = value.astimezone(UTC)
        except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
            raise ValueError(OUT_OF_RANGE) from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(OUT_OF_RANGE)
    return moment


def in_range(value: datetime) -> bool:
    """Whether ``value`` is inside the supported range."""
    try:
        utc_in_range(value)
    except ValueError:
        return False
    return True


def _iso_text_only(value: Any) -> Any:
    # Pydantic would read a bare number as a Unix timestamp; the documented type is a string.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


UtcDateTime = Annotated[datetime, BeforeValidator(_iso_text_only), AfterValidator(utc_in_range)]
"""An ISO 8601 date-time, in UTC, inside the supported range (a time without offset is UTC)."""


def bounded_int(value: int, low: int = -MAX_BIGINT - 1, high: int = MAX_BIGINT) -> int:
    """``value`` if ``low <= value <= high``; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"must be a whole number from {low} to {high}")
    return value


def zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; ValueError (never OSError) when it is not one."""
    shown = name if len(name) <= MAX_ZONE_NAME else name[:MAX_ZONE_NAME] + "…"
    message = f"unknown time zone {shown!r} (use an IANA name like America/New_York)"
    if len(name) > MAX_ZONE_NAME:
        raise ValueError(message)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(message) from None
