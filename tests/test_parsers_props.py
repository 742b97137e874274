"""Property tests of every parser of dates, numbers, cursors and zone names: whatever the
input, a value inside the documented limits or a ValueError / 422 naming the field, never
another exception (issue 13, finding 5)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from signup_sync.api.analytics import MAX_BIN_DAYS, parse_bins, parse_bound
from signup_sync.bounds import EARLIEST, LATEST, MAX_BIGINT, MAX_ZONE_NAME, utc_in_range, zone
from signup_sync.conversions.schemas import ConversionIn
from signup_sync.errors import InvalidInput
from signup_sync.events.schemas import EventIn
from signup_sync.leads.schemas import LeadSort
from signup_sync.leads.service import decode_cursor, encode_cursor
from signup_sync.sources.csv_import import parse_timestamp
from signup_sync.sync.schemas import SyncRequest
from signup_sync.tracking.schemas import TrackMessage

# Offsets as far as datetime allows (just under a day either way), and the real zones.
OFFSETS = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-1439, 1439)
) | st.sampled_from([UTC, zone("Pacific/Kiritimati"), zone("America/Adak")])
AWARE = st.datetimes(timezones=OFFSETS)
ANY_TIME = st.datetimes() | AWARE
# ISO-ish text around the edges of the range and of datetime itself, and plain junk.
EDGE_TEXT = st.builds(
    lambda y, mo, d, h, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:00:00{off}",
    st.sampled_from([1, 2, 1899, 1900, 1901, 2026, 2999, 3000, 9998, 9999]),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.sampled_from(["", "Z", "+00:00", "+01:00", "-05:00", "+23:59", "-23:59"]),
)
TEXT = EDGE_TEXT | st.text(max_size=40) | ANY_TIME.map(lambda d: d.isoformat())
SETTINGS = settings(max_examples=300, deadline=None)


def inside(value: datetime) -> bool:
    return value.tzinfo is not None and EARLIEST <= value <= LATEST


@SETTINGS
@given(ANY_TIME)
def test_utc_in_range_is_total(value: datetime) -> None:
    try:
        moment = utc_in_range(value)
    except ValueError as exc:
        assert "1900-01-01" in str(exc)
        return
    assert inside(moment) and moment.utcoffset() == timedelta(0)
    # Compared in UTC: a wall time in a DST gap compares unequal across zones otherwise.
    assert moment == (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))


@SETTINGS
@given(TEXT, st.booleans())
def test_query_bounds(raw: str, end: bool) -> None:
    try:
        moment = parse_bound(raw, "end_date", end=end)
    except InvalidInput as exc:
        assert exc.field == "end_date" and exc.status_code == 422
        return
    if moment is not None:
        # An end bound is exclusive: at most a day (or 1 µs) past the last supported instant.
        assert EARLIEST <= moment <= LATEST + timedelta(days=1)


@SETTINGS
@given(
    st.lists(
        st.integers(-(2**80), 2**80).map(str) | st.text(max_size=8), min_size=0, max_size=40
    ).map(",".join)
)
def test_bins(raw: str) -> None:
    try:
        edges = parse_bins(raw)
    except InvalidInput as exc:
        assert exc.field == "bins"
        return
    assert edges[0] >= 1 and edges[-1] <= MAX_BIN_DAYS and list(edges) == sorted(set(edges))


def _forged(sort: str, key: Any, lead_id: Any) -> str:
    raw = json.dumps({"s": sort, "k": key, "i": lead_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | TEXT
)


@SETTINGS
@given(st.sampled_from(list(LeadSort)), JSON_SCALAR, JSON_SCALAR)
def test_forged_cursors(sort: LeadSort, key: Any, lead_id: Any) -> None:
    try:
        decoded_key, decoded_id, _ = decode_cursor(_forged(sort.value, key, lead_id), sort)
    except InvalidInput as exc:
        assert exc.field == "cursor"
        return
    assert 1 <= decoded_id <= MAX_BIGINT
    if sort.key == "stage":
        assert 0 <= decoded_key <= 6
    elif sort.textual:
        assert isinstance(decoded_key, str)
    else:
        assert inside(utc_in_range(decoded_key))


@SETTINGS
@given(st.text(max_size=600))
def test_cursor_text(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor + "!", LeadSort.FIRST_SEEN)
    assert caught.value.field == "cursor"


@SETTINGS
@given(
    # Keys come from the database: UTC on PostgreSQL, naive UTC on SQLite.
    st.datetimes(datetime(1900, 1, 1), datetime(2999, 12, 31), timezones=st.none() | st.just(UTC)),
    st.integers(1, MAX_BIGINT),
)
def test_issued_cursors_round_trip(key: datetime, lead_id: int) -> None:
    cursor = encode_cursor(LeadSort.LAST_SEEN, key, lead_id)
    aware = key if key.tzinfo else key.replace(tzinfo=UTC)
    assert decode_cursor(cursor, LeadSort.LAST_SEEN) == (aware, lead_id, False)
    back = encode_cursor(LeadSort.LAST_SEEN, key, lead_id, backwards=True)
    assert decode_cursor(back, LeadSort.LAST_SEEN) == (aware, lead_id, True)


@SETTINGS
@given(TEXT, st.sampled_from([UTC, zone("Pacific/Kiritimati"), zone("Etc/GMT+12")]))
def test_csv_cells(raw: str, tz: Any) -> None:
    try:
        moment, _ = parse_timestamp(raw, tz)
    except ValueError:
        return
    assert inside(moment)


@SETTINGS
@given(st.text(max_size=300))
def test_zone_names(name: str) -> None:
    try:
        zone(name)
    except ValueError as exc:
        assert "unknown time zone" in str(exc)
        # A long name is not echoed whole: at most MAX_ZONE_NAME characters (each at most
        # 10 once escaped by repr) besides the fixed words.
        assert len(str(exc)) < 100 + 10 * MAX_ZONE_NAME


def _body_time(model: Any, field: str, raw: Any, **rest: Any) -> None:
    try:
        parsed = model.model_validate({field: raw, **rest})
    except ValidationError as exc:
        assert {err["loc"][0] for err in exc.errors()} == {field}
        return
    value = getattr(parsed, field)
    assert value is None or inside(value)


RAW = TEXT | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.none() | st.booleans()


@SETTINGS
@given(RAW)
def test_body_date_times(raw: Any) -> None:
    event = {"source_type": "manual", "event_type": "lead_captured", "email": "a@b.example"}
    _body_time(EventIn, "occurred_at", raw, **event)
    _body_time(ConversionIn, "converted_at", raw, email="a@b.example")
    _body_time(SyncRequest, "since", raw)
    _body_time(TrackMessage, "sentAt", raw, event="Signed Up", userId="u1")
