"""Zoom connector against a fake Zoom over real HTTP (tests/fakes/zoom.py).

Expected numbers come from ``standard_zoom()`` by hand:
registrations W1: Ana, KENJI.T, kenji.t (case variant, own registrant id), Lee, Pat (pending),
Dee (denied); the registrant without email is skipped. W2: Bob. W3 (upcoming): Zoë. M1: Priya.
Attendance: W1 instance: Ana (two sessions, one event), Kenji; Marta (no email), the host
(internal) and Wendy (waiting room only) are skipped. W2 "/AbCd//EfGh==": Bob, Ana;
W2 "Qm9u+am91cg==": Bob (three sessions over two pages, one event). M1: Priya.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, cast

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.sources import REGISTRY
from signup_sync.sources.base import Page, RetryPolicy, SourceContext
from signup_sync.sources.errors import (
    FatalSourceError,
    PaginationLoopError,
    RetriableSourceError,
    SkipRecord,
)
from signup_sync.sources.zoom import ZoomConfig, ZoomConnector, encode_uuid, map_webhook_event
from signup_sync.sources.zoom_auth import rate_limit_wait
from tests.conftest import truncate_all
from tests.fakes.zoom import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    HOST,
    I2A,
    I2B,
    M1,
    M1_UUID,
    U1,
    W1,
    W2,
    W3,
    FakeZoom,
    participant,
    registrant,
    serve,
    signed_webhook_headers,
    standard_zoom,
)
from tests.helpers import local_access

RUN_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ANA_RID = "8CeUCKjUQXaGdYbNpw0Z5A"


class Fake:
    def __init__(self, zoom: FakeZoom, url: str) -> None:
        self.zoom = zoom
        self.url = url


@pytest.fixture
def fake() -> Iterator[Fake]:
    zoom = standard_zoom()
    with serve(zoom.app()) as url:
        yield Fake(zoom, url)


def make_ctx(
    fake: Fake,
    *,
    cursor: dict[str, Any] | None = None,
    force: bool = False,
    secrets: dict[str, str] | None = None,
    attempts: int = 5,
    **config: Any,
) -> SourceContext:
    values: dict[str, Any] = {
        "base_url": f"{fake.url}/v2",
        "token_url": f"{fake.url}/oauth/token",
        "account_id": ACCOUNT_ID,
        "user_ids": [HOST],
        "meeting_ids": [int(M1)],
        "page_size": 2,
        **config,
    }
    return SourceContext(
        source_id=1,
        access=local_access(),
        source_type="zoom",
        name="zoom",
        config=ZoomConfig.model_validate(values),
        secrets={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        if secrets is None
        else secrets,
        cursor=cursor,
        run_started_at=RUN_AT,
        force=force,
        retry=RetryPolicy(wait_scale=0, attempts=attempts),
    )


async def read_pages(ctx: SourceContext, stop_after: int | None = None) -> list[Page]:
    connector = ZoomConnector(ctx)
    gen = cast(AsyncGenerator[Page, None], connector.pages())
    pages: list[Page] = []
    try:
        async for page in gen:
            pages.append(page)
            if stop_after is not None and len(pages) >= stop_after:
                break
    finally:
        await gen.aclose()
        await connector.aclose()
    return pages


def map_pages(ctx: SourceContext, pages: list[Page]) -> tuple[list[EventRecord], Counter[str]]:
    connector = ZoomConnector(ctx)
    events: list[EventRecord] = []
    skipped: Counter[str] = Counter()
    for page in pages:
        for record in page.records:
            try:
                events.extend(connector.map_record(record))
            except SkipRecord as exc:
                skipped[exc.reason] += 1
    return events, skipped


async def run(fake: Fake, **kwargs: Any) -> tuple[list[EventRecord], Counter[str], list[Page]]:
    ctx = make_ctx(fake, **kwargs)
    pages = await read_pages(ctx)
    events, skipped = map_pages(ctx, pages)
    return events, skipped, pages


def person(email: str) -> str:
    from signup_sync.sources.zoom_records import person_key

    return person_key(email)


EXPECTED_REGISTERED = {
    # external id -> (email, status, utm_source, utm_campaign)
    f"webinar:{W1}:registrant:{ANA_RID}": (
        "ana.muller@example.com",
        "active",
        "linkedin-ad",
        "q3-growth",
    ),
    f"webinar:{W1}:registrant:qLm3Xo0bR8uH7s2dVbN9wQ": (
        "kenji.t@example.jp",
        "active",
        "newsletter",
        None,
    ),
    f"webinar:{W1}:registrant:Zk2dup0000000000000001": ("kenji.t@example.jp", "active", None, None),
    f"webinar:{W1}:registrant:Lee0000000000000000001": ("lee@example.org", "active", None, None),
    f"webinar:{W1}:registrant:Pat0000000000000000001": (
        "pat.pending@example.com",
        "active",
        None,
        None,
    ),
    f"webinar:{W1}:registrant:Dee0000000000000000001": (
        "dee.nied@example.com",
        "denied",
        None,
        None,
    ),
    f"webinar:{W2}:registrant:Bob0000000000000000001": ("bob@example.net", "active", None, None),
    f"webinar:{W3}:registrant:Zoe0000000000000000001": ("zoe@example.com", "active", None, None),
    f"meeting:{M1}:registrant:dQw4w9WgXcQ-1a2b3c4d5e": (
        "priya.raman@example.in",
        "active",
        None,
        None,
    ),
}
EXPECTED_ATTENDED = {
    # external id -> (email, occurred_at)
    f"webinar_instance:{U1}:person:{person('ana.muller@example.com')}": (
        "ana.muller@example.com",
        "2024-06-12T17:01:05+00:00",
    ),
    f"webinar_instance:{U1}:person:{person('kenji.t@example.jp')}": (
        "kenji.t@example.jp",
        "2024-06-12T17:03:00+00:00",
    ),
    f"webinar_instance:{I2A}:person:{person('bob@example.net')}": (
        "bob@example.net",
        "2024-07-01T16:02:00+00:00",
    ),
    f"webinar_instance:{I2A}:person:{person('ana.muller@example.com')}": (
        "ana.muller@example.com",
        "2024-07-01T16:05:00+00:00",
    ),
    f"webinar_instance:{I2B}:person:{person('bob@example.net')}": (
        "bob@example.net",
        "2024-07-08T16:01:00+00:00",
    ),
    f"meeting_instance:{M1_UUID}:person:{person('priya.raman@example.in')}": (
        "priya.raman@example.in",
        "2024-06-20T15:02:00+00:00",
    ),
}
EXPECTED_SKIPPED = {
    "no email": 1,
    "no email (guest or anonymous participant)": 1,
    "internal user (host, panelist or staff)": 1,
    "only in the waiting room": 1,
}


def check_full(events: list[EventRecord], skipped: Counter[str]) -> None:
    registered = {e.external_id: e for e in events if e.event_type == "webinar_registered"}
    attended = {e.external_id: e for e in events if e.event_type == "webinar_attended"}
    assert len(events) == len(EXPECTED_REGISTERED) + len(EXPECTED_ATTENDED)  # no repeats
    assert {
        k: (e.email, e.status, e.utm_source, e.utm_campaign) for k, e in registered.items()
    } == EXPECTED_REGISTERED
    assert {
        k: (e.email, e.occurred_at.isoformat()) for k, e in attended.items()
    } == EXPECTED_ATTENDED
    assert dict(skipped) == EXPECTED_SKIPPED
    assert all(e.source_type == "zoom" and e.occurred_at.tzinfo is not None for e in events)


# --- the stream and the mapping --------------------------------------------------------------


async def test_registry_has_zoom() -> None:
    assert REGISTRY["zoom"] is ZoomConnector


async def test_full_sync_gives_exactly_the_expected_events(fake: Fake) -> None:
    events, skipped, pages = await run(fake)
    check_full(events, skipped)
    ana = next(e for e in events if e.external_id == f"webinar:{W1}:registrant:{ANA_RID}")
    assert (ana.first_name, ana.last_name, ana.company) == ("Ana", "Müller", "Acme Iberia")
    assert (ana.phone, ana.phone_e164) == ("+34 600 123 456", "+34600123456")
    assert ana.occurred_at == datetime(2024, 6, 3, 15, 24, 11, tzinfo=UTC)
    assert ana.metadata is not None
    assert ana.metadata["item"] == {"kind": "webinar", "id": W1, "name": "Q3 Growth Webinar"}
    assert ana.metadata["tracking_source"] == {"id": "5516482804110", "name": "LinkedIn-Ad"}
    priya = next(
        e
        for e in events
        if e.email == "priya.raman@example.in" and e.event_type == "webinar_registered"
    )
    assert priya.metadata is not None and priya.metadata["item"]["kind"] == "meeting"
    bob = next(
        e
        for e in events
        if e.external_id == f"webinar_instance:{I2B}:person:{person('bob@example.net')}"
    )
    assert bob.metadata is not None and bob.metadata["sessions"] == 2  # two on the first page
    assert pages[-1].records == [] and pages[-1].cursor is not None
    assert pages[-1].cursor["pass"] is None
    # Every status was asked for (Zoom lists only approved by default), per tracking source too.
    for status in ("approved", "pending", "denied"):
        assert fake.zoom.requested(f"/webinars/{W1}/registrants?status={status}&page_size=2")
        assert fake.zoom.requested(f"status={status}&tracking_source_id=5516482804110")
    # The upcoming webinar has no past instances to ask for; the double-encoded UUID was used.
    assert not fake.zoom.requested(f"/past_webinars/{W3}/")
    assert fake.zoom.requested("/past_webinars/%2FAbCd%2F%2FEfGh%3D%3D/participants")
    assert fake.zoom.tokens_issued == 1  # cached for the whole run


async def test_encode_uuid_doubles_only_when_zoom_requires() -> None:
    assert encode_uuid("Xy7q8JmXQ6KJ2y7f1c3kOw==") == "Xy7q8JmXQ6KJ2y7f1c3kOw%3D%3D"
    assert encode_uuid("/abc==") == "%252Fabc%253D%253D"
    assert encode_uuid("ab//c") == "ab%252F%252Fc"
    assert encode_uuid("ab/c") == "ab%2Fc"


async def test_configured_webinar_ids_only(fake: Fake) -> None:
    events, _, _ = await run(fake, user_ids=[], meeting_ids=[], webinar_ids=[W2])
    assert sorted(e.external_id or "" for e in events) == sorted(
        [
            f"webinar:{W2}:registrant:Bob0000000000000000001",
            f"webinar_instance:{I2A}:person:{person('bob@example.net')}",
            f"webinar_instance:{I2A}:person:{person('ana.muller@example.com')}",
            f"webinar_instance:{I2B}:person:{person('bob@example.net')}",
        ]
    )


async def test_host_listing_paged_by_page_number(fake: Fake) -> None:
    fake.zoom.numbered_listings = True
    events, skipped, _ = await run(fake)
    check_full(events, skipped)
    assert fake.zoom.requested(f"/users/{HOST}/webinars?type=scheduled&page_size=2&page_number=2")


async def test_unknown_configured_webinar_is_fatal_naming_it(fake: Fake) -> None:
    with pytest.raises(FatalSourceError, match="webinar 80000000000 not found"):
        await run(fake, user_ids=[], meeting_ids=[], webinar_ids=["80000000000"])


async def test_listed_webinar_deleted_mid_run_is_skipped(fake: Fake) -> None:
    del fake.zoom.registrants[("webinar", W1)]  # the fake now answers 404, code 3001
    events, _, pages = await run(fake)
    assert not any(
        f":{W1}:" in (e.external_id or "") or U1 in (e.external_id or "") for e in events
    )
    assert len(events) == 15 - 6 - 2
    assert pages[-1].cursor is not None and pages[-1].cursor["pass"] is None


async def test_pending_not_counted_when_configured(fake: Fake) -> None:
    events, _, _ = await run(fake, count_pending=False, registrant_statuses=["pending"])
    assert {e.email: e.status for e in events if e.event_type == "webinar_registered"} == {
        "pat.pending@example.com": "pending"
    }


async def test_utm_questions_mapping_is_configurable(fake: Fake) -> None:
    events, _, _ = await run(fake, utm_questions={"How did you hear about us?": "utm_medium"})
    ana = next(e for e in events if e.external_id == f"webinar:{W1}:registrant:{ANA_RID}")
    assert (ana.utm_source, ana.utm_medium, ana.utm_campaign) == (
        "linkedin-ad",
        "linkedin ad",
        "q3-growth",
    )


async def test_backfill_window_limits_registrants_and_instances(fake: Fake) -> None:
    ctx = make_ctx(fake)
    ctx.since = datetime(2024, 6, 15, tzinfo=UTC)
    ctx.until = datetime(2024, 7, 5, tzinfo=UTC)
    events, _ = map_pages(ctx, await read_pages(ctx))
    assert sorted(e.external_id or "" for e in events) == sorted(
        [
            f"webinar:{W2}:registrant:Bob0000000000000000001",
            f"webinar_instance:{I2A}:person:{person('bob@example.net')}",
            f"webinar_instance:{I2A}:person:{person('ana.muller@example.com')}",
            f"meeting_instance:{M1_UUID}:person:{person('priya.raman@example.in')}",
        ]
    )


# --- authentication --------------------------------------------------------------------------


async def test_expired_token_is_refreshed_once(fake: Fake) -> None:
    fake.zoom.fail(f"/webinars/{W1}/registrants", "expire-token")
    events, skipped, _ = await run(fake)
    check_full(events, skipped)
    assert fake.zoom.tokens_issued == 2


async def test_token_rejected_after_refresh_is_fatal(fake: Fake) -> None:
    fake.zoom.fail("/users/", "401", times=2)
    with pytest.raises(FatalSourceError, match="not authorised"):
        await run(fake)
    assert fake.zoom.tokens_issued == 2  # one refresh, no loop


async def test_bad_credentials_are_fatal_without_leaking_them(fake: Fake) -> None:
    with pytest.raises(FatalSourceError) as info:
        await run(fake, secrets={"client_id": CLIENT_ID, "client_secret": "wrong-secret-value"})
    assert "invalid_client" in str(info.value)
    assert "wrong-secret-value" not in str(info.value)
    with pytest.raises(FatalSourceError, match="invalid_request"):
        await run(fake, account_id="not-the-account")
    assert fake.zoom.requests == ["POST /oauth/token"] * 2  # refused credentials: no retry


async def test_token_endpoint_failures_are_retried(fake: Fake) -> None:
    fake.zoom.fail("/oauth/token", "500")
    fake.zoom.fail("/oauth/token", "429")
    events, skipped, _ = await run(fake)
    check_full(events, skipped)
    assert fake.zoom.requests[:3] == ["POST /oauth/token"] * 3


async def test_missing_secret_names_the_variable(fake: Fake) -> None:
    with pytest.raises(FatalSourceError, match="SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET"):
        await run(fake, secrets={"client_id": CLIENT_ID})
    config = {"user_ids": [HOST], "account_id_env": "SIGNUP_SYNC_SOURCE_MY_ZOOM_ACCOUNT"}
    ctx = make_ctx(fake, **config)
    ctx.config = ZoomConfig.model_validate(config)
    with pytest.raises(FatalSourceError, match="SIGNUP_SYNC_SOURCE_MY_ZOOM_ACCOUNT"):
        await read_pages(ctx)


def test_unfinished_pass_resumes_only_over_the_same_window() -> None:
    from signup_sync.sources.zoom_pages import Progress

    progress = Progress(None, [None, None])
    progress.start_item(f"webinar:{W1}")
    progress.lists_done.append("all:approved")
    progress.item(f"webinar:{W1}")["instances_done"].append(U1)
    cursor = progress.dump()
    progress.lists_done.append("all:pending")
    assert cursor["pass"]["lists_done"] == ["all:approved"]  # a snapshot, not a live view
    again = Progress(cursor, [None, None])
    assert (again.current, again.lists_done) == (f"webinar:{W1}", ["all:approved"])
    windowed = Progress(cursor, ["2024-01-01T00:00:00+00:00", None])
    assert (windowed.current, windowed.lists_done) == (None, [])
    assert windowed.item(f"webinar:{W1}")["instances_done"] == [U1]  # kept across runs
    assert Progress({"v": 99, "items": {"x": {}}}, [None, None]).items == {}


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="webinar_ids, meeting_ids or user_ids"):
        ZoomConfig.model_validate({})
    with pytest.raises(ValidationError, match="page_size"):
        ZoomConfig.model_validate({"user_ids": ["me"], "page_size": 301})
    with pytest.raises(ValidationError, match="extra"):
        ZoomConfig.model_validate({"user_ids": ["me"], "client_secret": "x"})
    config = ZoomConfig.model_validate({"webinar_ids": [84512345678], "account_id": "acc"})
    assert config.webinar_ids == ["84512345678"]
    assert config.secret_env_names() == {
        "client_id": "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID",
        "client_secret": "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET",
    }
    assert ZoomConfig.model_validate({"user_ids": ["me"]}).secret_env_names()["account_id"] == (
        "SIGNUP_SYNC_SOURCE_ZOOM_ACCOUNT_ID"
    )


# --- transient failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "retry_after"),
    [
        ("429", "2"),
        ("429-date", format_datetime(datetime(2030, 1, 1, tzinfo=UTC), usegmt=True)),
        ("429-daily", "2000-01-01T00:00:00Z"),
        ("500", None),
        ("bad-json", None),
        ("bad-shape", None),
    ],
)
async def test_transient_failures_are_retried(
    fake: Fake, kind: str, retry_after: str | None
) -> None:
    fake.zoom.fail(f"/webinars/{W1}/registrants", kind, times=2, retry_after=retry_after)
    fake.zoom.fail(f"/past_webinars/{U1}", kind, retry_after=retry_after)
    events, skipped, _ = await run(fake)
    check_full(events, skipped)


async def test_persistent_malformed_page_is_retriable_error(fake: Fake) -> None:
    fake.zoom.fail(f"/webinars/{W1}/registrants", "bad-shape", times=10)
    with pytest.raises(RetriableSourceError, match="malformed page"):
        await run(fake, attempts=3)


async def test_daily_limit_far_away_stops_the_run(fake: Fake) -> None:
    fake.zoom.fail("/users/", "429-daily", retry_after="2999-01-01T00:00:00Z")
    with pytest.raises(FatalSourceError, match="daily rate limit"):
        await run(fake)


def test_rate_limit_wait_reads_every_form() -> None:
    now = datetime(2024, 6, 12, 23, 0, tzinfo=UTC)
    assert rate_limit_wait(httpx.Headers({"Retry-After": "7"}), now=now) == 7
    assert (
        rate_limit_wait(httpx.Headers({"Retry-After": "Wed, 12 Jun 2024 23:00:30 GMT"}), now=now)
        == 30
    )
    assert rate_limit_wait(httpx.Headers({"Retry-After": "2024-06-13T00:00:00Z"}), now=now) == 3600
    assert rate_limit_wait(httpx.Headers({"X-RateLimit-Type": "Daily-limit"}), now=now) == 3600
    assert rate_limit_wait(httpx.Headers({"X-RateLimit-Type": "QPS"}), now=now) is None


async def test_repeated_page_token_is_a_loop(fake: Fake) -> None:
    fake.zoom.loop_tokens = True
    with pytest.raises(PaginationLoopError):
        await run(fake)


async def test_expired_page_token_restarts_the_listing(fake: Fake) -> None:
    fake.zoom.fail(f"/webinars/{W1}/registrants", "code300", only_with_token=True)
    events, skipped, _ = await run(fake)
    check_full(events, skipped)


# --- webhooks --------------------------------------------------------------------------------


def test_webhook_mapping_gives_the_sync_external_ids() -> None:
    registration = {
        "event": "webinar.registration_created",
        "event_ts": 1717430401000,
        "payload": {
            "account_id": ACCOUNT_ID,
            "object": {
                "id": int(W1),
                "uuid": U1,
                "topic": "Q3 Growth Webinar",
                "registrant": {
                    "id": ANA_RID,
                    "email": "Ana.Muller@example.com",
                    "first_name": "Ana",
                    "last_name": "Müller",
                    "status": "approved",
                    "tracking_source": {
                        "id": "5516482804110",
                        "source_name": "LinkedIn-Ad",
                        "tracking_url": "x",
                    },
                },
            },
        },
    }
    [event] = map_webhook_event(registration)
    assert (
        event.external_id == f"webinar:{W1}:registrant:{ANA_RID}"
        and event.external_id in EXPECTED_REGISTERED
    )
    assert (event.event_type, event.email, event.status, event.utm_source) == (
        "webinar_registered",
        "ana.muller@example.com",
        "active",
        "linkedin-ad",
    )
    assert event.occurred_at == datetime(
        2024, 6, 3, 16, 0, 1, tzinfo=UTC
    )  # event_ts: no create_time

    joined = {
        "event": "webinar.participant_joined",
        "event_ts": 1718211665000,
        "payload": {
            "account_id": ACCOUNT_ID,
            "object": {
                "id": W1,  # a string in participant events
                "uuid": U1,
                "topic": "Q3 Growth Webinar",
                "participant": {
                    "user_id": "16778240",
                    "user_name": "Ana Müller",
                    "id": "",
                    "join_time": "2024-06-12T17:01:05Z",
                    "email": "ana.muller@example.com",
                    "registrant_id": ANA_RID,
                    "participant_user_id": "",
                    "participant_uuid": "p-uuid-1",
                },
            },
        },
    }
    [attended] = map_webhook_event(joined)
    assert attended.event_type == "webinar_attended"
    assert EXPECTED_ATTENDED[attended.external_id or ""] == (
        "ana.muller@example.com",
        attended.occurred_at.isoformat(),
    )
    left = {**joined, "event": "webinar.participant_left"}
    assert map_webhook_event(left)[0].external_id == attended.external_id

    cancelled = {
        "event": "webinar.registration_cancelled",
        "event_ts": 1718211665000,
        "payload": {
            "object": {
                "id": int(W1),
                "registrant": {
                    "id": "qLm3Xo0bR8uH7s2dVbN9wQ",
                    "email": "kenji.t@example.jp",
                    "first_name": "Kenji",
                },
            }
        },
    }
    [gone] = map_webhook_event(cancelled)
    assert gone.status == "cancelled" and gone.external_id in EXPECTED_REGISTERED

    meeting = {
        "event": "meeting.registration_created",
        "event_ts": 1718211665000,
        "payload": {
            "object": {
                "id": int(M1),
                "topic": "Onboarding Q&A",
                "registrant": {
                    "id": "dQw4w9WgXcQ-1a2b3c4d5e",
                    "email": "priya.raman@example.in",
                    "first_name": "Priya",
                    "status": "pending",
                },
            }
        },
    }
    [priya] = map_webhook_event(meeting)
    assert priya.external_id in EXPECTED_REGISTERED and priya.metadata is not None
    assert priya.metadata["item"]["kind"] == "meeting"

    assert map_webhook_event({"event": "webinar.ended", "payload": {"object": {"id": 1}}}) == []
    assert (
        map_webhook_event({"event": "endpoint.url_validation", "payload": {"plainToken": "x"}})
        == []
    )
    with pytest.raises(SkipRecord, match="no email"):
        guest = {
            **joined,
            "payload": {
                "object": {
                    **joined["payload"]["object"],
                    "participant": {"user_name": "iPhone", "email": ""},
                }
            },
        }  # type: ignore[index]
        map_webhook_event(guest)


def test_webhook_vector_z3_maps_like_the_sync() -> None:
    import orjson

    raw = (
        '{"event":"webinar.registration_created","event_ts":1717430401000,"payload":{"account_id":'
        '"AbCdEfGhIjKlMnOpQrStUv","object":{"id":84512345678,"uuid":"Xy7q8JmXQ6KJ2y7f1c3kOw==",'
        '"registrant":{"id":"8CeUCKjUQXaGdYbNpw0Z5A","email":"ana.muller@example.com",'
        '"first_name":"Ana","last_name":"Müller","status":"approved"}}}}'
    )
    headers = signed_webhook_headers("zoom_wh_secret_TEST_123", "1717430401", raw.encode())
    assert len(raw.encode()) == 316
    assert headers["x-zm-signature"] == (
        "v0=d7baa3cedc21dbe0e4e5af1f0113fdbc0ef6203a093a3e7fa18d74984b5f5acc"
    )
    [event] = map_webhook_event(orjson.loads(raw))
    assert event.external_id == f"webinar:{W1}:registrant:{ANA_RID}"
    assert event.last_name == "Müller"


# --- against the database: idempotency, increments, resume -----------------------------------


async def sync_into(
    engine: AsyncEngine,
    fake: Fake,
    *,
    cursor: dict[str, Any] | None = None,
    stop_after: int | None = None,
    force: bool = False,
    **config: Any,
) -> tuple[dict[str, Any] | None, Counter[str]]:
    """What the engine does: map each page, ingest it and commit it with its cursor."""
    ctx = make_ctx(fake, cursor=cursor, force=force, **config)
    connector = ZoomConnector(ctx)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    outcomes: Counter[str] = Counter()
    gen = cast(AsyncGenerator[Page, None], connector.pages())
    count = 0
    try:
        async for page in gen:
            events: list[EventRecord] = []
            for record in page.records:
                try:
                    events.extend(connector.map_record(record))
                except SkipRecord:
                    outcomes["skipped"] += 1
            async with sessions() as session:
                for outcome in await ingest(session, events):
                    outcomes[outcome.status] += 1
                await session.commit()
            if page.cursor is not None:
                cursor = page.cursor
            count += 1
            if stop_after is not None and count >= stop_after:
                break
    finally:
        await gen.aclose()
        await connector.aclose()
    return cursor, outcomes


async def dump(engine: AsyncEngine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with async_sessionmaker(engine)() as session:
        events = (
            await session.execute(
                select(
                    FunnelEvent.external_id,
                    FunnelEvent.event_type,
                    FunnelEvent.status,
                    FunnelEvent.occurred_at,
                    Lead.email,
                    FunnelEvent.utm_source,
                    FunnelEvent.utm_campaign,
                    FunnelEvent.event_metadata,
                )
                .join(Lead, Lead.id == FunnelEvent.lead_id)
                .order_by(FunnelEvent.external_id, FunnelEvent.event_type)
            )
        ).all()
        leads = (
            await session.execute(
                select(
                    Lead.email,
                    Lead.stage,
                    Lead.first_name,
                    Lead.last_name,
                    Lead.first_seen_at,
                    Lead.first_touch_utm_source,
                ).order_by(Lead.email)
            )
        ).all()
    return [tuple(r) for r in events], [tuple(r) for r in leads]


async def test_sync_stores_events_and_second_run_adds_nothing(
    engine: AsyncEngine, fake: Fake
) -> None:
    cursor, first = await sync_into(engine, fake)
    events, leads = await dump(engine)
    assert first == Counter(accepted=15, skipped=4)
    assert len(events) == 15
    assert {row[0] for row in events} == set(EXPECTED_REGISTERED) | set(EXPECTED_ATTENDED)
    # kenji.t in two cases is one lead; Dee (denied only) is a lead at stage 0.
    assert [(email, stage) for email, stage, *_ in leads] == [
        ("ana.muller@example.com", 3),
        ("bob@example.net", 3),
        ("dee.nied@example.com", 0),
        ("kenji.t@example.jp", 3),
        ("lee@example.org", 2),
        ("pat.pending@example.com", 2),
        ("priya.raman@example.in", 3),
        ("zoe@example.com", 2),
    ]
    assert next(r for r in leads if r[0] == "ana.muller@example.com")[3] == "Müller"
    participants_before = len(fake.zoom.requested("/participants"))

    cursor, second = await sync_into(engine, fake, cursor=cursor)
    # Registrants are re-listed only for items upcoming or ended within 30 days (W2 is
    # recurring, W3 upcoming): Bob and Zoë again; W1 and M1 ended long ago.
    assert second == Counter(duplicate=2)
    assert await dump(engine) == (events, leads)
    # Past instances read in full last time are not fetched again.
    assert len(fake.zoom.requested("/participants")) == participants_before
    assert cursor is not None and cursor["pass"] is None


async def test_incremental_run_picks_up_only_changes(engine: AsyncEngine, fake: Fake) -> None:
    cursor, _ = await sync_into(engine, fake)
    before, _ = await dump(engine)
    zoom = fake.zoom
    zoom.registrants[("webinar", W3)].append(
        registrant(
            "New0000000000000000001",
            "Nadia",
            "Nuñez",
            "nadia@example.com",
            "pending",
            "2026-11-29T10:00:00Z",
        )
    )
    zoom.instances[("webinar", W2)].append(
        {"uuid": "NewInst+ance==", "start_time": "2024-07-15T16:00:00Z"}
    )
    zoom.participants["NewInst+ance=="] = [
        participant("Nadia", "Nadia@Example.com", "2024-07-15T16:03:00Z", "2024-07-15T16:30:00Z"),
        participant("Bob Ng", "bob@example.net", "2024-07-15T16:04:00Z", "2024-07-15T16:30:00Z"),
    ]
    zoom.requests.clear()
    _, outcomes = await sync_into(engine, fake, cursor=cursor)
    after, _ = await dump(engine)
    added = sorted(set(r[0] for r in after) - set(r[0] for r in before))
    assert added == sorted(
        [
            f"webinar:{W3}:registrant:New0000000000000000001",
            f"webinar_instance:NewInst+ance==:person:{person('nadia@example.com')}",
            f"webinar_instance:NewInst+ance==:person:{person('bob@example.net')}",
        ]
    )
    assert outcomes["accepted"] == 3
    assert not zoom.requested(f"/webinars/{W1}/registrants")  # ended long ago: not re-listed
    assert [r for r in zoom.requests if "/participants" in r] == [
        "GET /past_webinars/NewInst+ance==/participants?page_size=2"
    ]


async def test_denied_later_updates_the_stored_status(engine: AsyncEngine, fake: Fake) -> None:
    cursor, _ = await sync_into(engine, fake)
    fake.zoom.registrants[("webinar", W3)][0]["status"] = "denied"
    _, outcomes = await sync_into(engine, fake, cursor=cursor)
    assert outcomes == Counter(duplicate=2)
    events, _ = await dump(engine)
    zoe = f"webinar:{W3}:registrant:Zoe0000000000000000001"
    assert next(r for r in events if r[0] == zoe)[2] == "denied"


async def test_relist_window_is_configurable(engine: AsyncEngine, fake: Fake) -> None:
    cursor, _ = await sync_into(engine, fake)
    _, outcomes = await sync_into(engine, fake, cursor=cursor, relist_registrants_days=100_000)
    assert outcomes == Counter(duplicate=9, skipped=1)


async def test_force_rereads_done_instances(engine: AsyncEngine, fake: Fake) -> None:
    cursor, _ = await sync_into(engine, fake)
    reads = len(fake.zoom.requested("/participants"))
    await sync_into(engine, fake, cursor=cursor, force=True)
    assert len(fake.zoom.requested("/participants")) == 2 * reads


@pytest.mark.slow  # see README, Tests
async def test_kill_after_any_page_then_resume_gives_the_same_rows(
    engine: AsyncEngine, fake: Fake
) -> None:
    _, _ = await sync_into(engine, fake)
    baseline = await dump(engine)
    total_pages = len(await read_pages(make_ctx(fake)))
    assert total_pages > 20
    for k in range(1, total_pages):
        await truncate_all(engine)
        fake.zoom.requests.clear()
        cursor, _ = await sync_into(engine, fake, stop_after=k)
        assert cursor is not None and cursor["pass"] is not None
        first_requests = len(fake.zoom.requests)
        cursor, _ = await sync_into(engine, fake, cursor=cursor)
        assert cursor is not None and cursor["pass"] is None
        assert await dump(engine) == baseline, f"killed after page {k}"
        # The resumed run skips what was done: fewer requests than a run from scratch, overall
        # no more than one uninterrupted run plus one list/instance re-read.
        assert len(fake.zoom.requests) - first_requests < 40
