"""Pure rules of the tracking API: config, decoding, page fields, identity map."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from signup_sync.errors import PayloadTooLarge
from signup_sync.settings import SettingsError, load_settings
from signup_sync.tracking.config import parse_event_map, parse_write_keys, write_key_id
from signup_sync.tracking.decode import TrackingBadRequest, decompress
from signup_sync.tracking.identity import IdentityGraph
from signup_sync.tracking.messages import Parsed, corrected_time, is_landing, page_fields
from signup_sync.vocabulary import EventType


def test_write_keys_take_an_optional_source_type_and_errors_hide_the_key() -> None:
    keys = parse_write_keys(["abcdefgh12", "zyxwvuts98=referral"])
    assert [k.source_type for k in keys.values()] == ["direct_signup", "referral"]
    assert keys[b"abcdefgh12"].id == write_key_id("abcdefgh12")
    with pytest.raises(SettingsError) as short:
        load_settings(segment_write_keys="okokokok1,short")
    assert "SEGMENT_WRITE_KEYS" in str(short.value) and "short" not in str(short.value)
    with pytest.raises(SettingsError, match="source type"):
        load_settings(segment_write_keys="secret-key-1=nowhere")


def test_event_map_merges_over_the_defaults() -> None:
    mapping = parse_event_map('{"Demo Booked": "appointment_booked", "Signed Up": null}')
    assert mapping["demo booked"] is EventType.APPOINTMENT_BOOKED
    assert "signed up" not in mapping
    assert mapping["webinar registered"] is EventType.WEBINAR_REGISTERED
    assert mapping["signup_completed"] is EventType.SIGNUP_COMPLETED
    for bad in ("[1]", "{nope", '{"X": "paid"}', '{" ": "converted"}'):
        with pytest.raises(ValueError):
            parse_event_map(bad)
    with pytest.raises(SettingsError, match="SEGMENT_EVENT_MAP"):
        load_settings(segment_event_map='{"X": "paid"}')


def test_decompress_reads_several_gzip_members_and_deflate_within_the_limit() -> None:
    two = gzip.compress(b'{"a": ') + gzip.compress(b"1}")
    assert decompress(two, "gzip", 100) == b'{"a": 1}'
    assert decompress(zlib.compress(b"{}"), "deflate", 100) == b"{}"
    assert decompress(b"{}", None, 100) == b"{}"
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(b"x" * 101), "gzip", 100)
    with pytest.raises(PayloadTooLarge):  # the limit counts every member together
        decompress(gzip.compress(b"x" * 60) * 2, "gzip", 100)
    with pytest.raises(TrackingBadRequest, match="br"):
        decompress(b"{}", "br", 100)


def test_corrected_time() -> None:
    received = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    stamp = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    assert corrected_time(stamp, stamp + timedelta(minutes=5), received) == received - timedelta(
        minutes=5
    )
    assert corrected_time(stamp, None, received) == stamp
    assert corrected_time(None, stamp, received) == received
    naive = datetime(2026, 6, 3, 10, 0)  # no offset means UTC
    assert corrected_time(naive, None, received) == stamp


@pytest.mark.parametrize(
    ("context", "landing"),
    [
        ({"campaign": {"source": "Google"}}, True),
        ({"page": {"url": "https://a.com/?gclid=xyz"}}, True),
        ({"page": {"url": "https://a.com/x", "referrer": "https://www.a.com/"}}, False),
        ({"page": {"url": "https://a.com/x", "referrer": "https://news.ycombinator.com/"}}, True),
        ({"page": {"url": "https://a.com/"}}, False),
        ({"campaign": "not an object", "page": ["nor this"]}, False),
    ],
)
def test_landing_page_views(context: dict[str, object], landing: bool) -> None:
    assert is_landing(page_fields({"type": "page", "context": context})) is landing


def test_campaign_wins_over_the_url_query_and_utms_are_lower_cased() -> None:
    fields = page_fields(
        {
            "type": "page",
            "context": {
                "campaign": {"name": "Spring", "keyword": "Shoes"},
                "page": {"search": "?utm_source=NEWS&utm_campaign=other&fbclid=f1"},
            },
        }
    )
    assert (fields["utm_campaign"], fields["utm_term"], fields["utm_source"]) == (
        "spring",
        "shoes",
        "news",
    )
    assert fields["fbclid"] == "f1"


def _msg(
    kind: str,
    anon: str | None = None,
    user: str | None = None,
    email: str | None = None,
    previous: str | None = None,
) -> Parsed:
    return Parsed(
        index=0,
        type=kind,
        message_id="m",
        anonymous_id=anon,
        user_id=user,
        previous_id=previous,
        email=email,
        event_name=None,
        event_type=None,
        occurred_at=datetime(2026, 6, 3, tzinfo=UTC),
        payload={},
    )


def test_identity_graph_rules() -> None:
    graph = IdentityGraph()
    graph.observe(_msg("identify", anon="a1", email="a@example.com"))
    assert graph.resolve("a1", None) == "a@example.com"
    # The user seen with a1 inherits its email; a1 now follows the user.
    graph.observe(_msg("track", anon="a1", user="u1"))
    assert graph.resolve(None, "u1") == "a@example.com"
    # A new email on the user wins for every id that leads to it.
    graph.observe(_msg("identify", user="u1", email="b@example.com"))
    assert graph.resolve("a1", None) == "b@example.com"
    # Alias of an unknown previous id links it (as either kind) to the user.
    graph.observe(_msg("alias", user="u1", previous="old"))
    assert graph.resolve("old", None) == graph.resolve(None, "old") == "b@example.com"
    # Crossed aliases make a cycle: resolution still ends.
    graph.observe(_msg("alias", user="old", previous="u1"))
    assert graph.resolve(None, "u1") == "b@example.com"
    assert {k for k, _ in graph.dirty_nodes()} >= {("anon", "a1"), ("user", "u1")}


def test_a_correction_past_the_calendar_is_a_rejection_not_a_crash() -> None:
    from signup_sync.tracking.config import tracking_config
    from signup_sync.tracking.messages import MessageRejected, parse_message
    from signup_sync.tracking.schemas import PageMessage

    # Each time is inside the supported range (sentAt far out is refused by the schema), but
    # the clock-skew correction, timestamp + receivedAt - sentAt, lands past its end.
    raw = {
        "anonymousId": "a",
        "timestamp": "2999-12-01T00:00:00Z",
        "sentAt": "1900-01-01T00:00:00Z",
    }
    with pytest.raises(MessageRejected) as exc:
        parse_message(
            0,
            raw,
            PageMessage.model_validate(raw),
            batch_sent_at=None,
            batch_context={},
            config=tracking_config([], ""),
            received_at=datetime(2026, 6, 3, tzinfo=UTC),
        )
    assert exc.value.field == "timestamp"
