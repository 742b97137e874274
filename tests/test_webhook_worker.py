"""The inbox worker: persist-then-ack, processing per source, retries, parking, replay,
crash recovery, and webhooks converging with the poll (run_sync against the fakes).

Hand counts:
* Zoom (``standard_zoom``): a full sync reads 19 records, 4 skipped, 15 events (see
  tests/sources/test_zoom.py). After the Z3 webhook (Ana's W1 registration) it stores 14.
* Eventbrite, 6 attendees (rules in tests/fakes/eventbrite.py): 0 checked in (2 events),
  1-4 one event each (4 cancelled), 5 no email -> 6 events. Order 4512000000 = attendees 0
  and 1 = 3 events; the sync then stores the 3 events of attendees 2, 3, 4.
* EasyAppointments (default fake data): 16 appointments listed, 1005 (no contact) and 1008
  (draft) skipped -> 14 ``appointment_booked``; after the webhook for 1001, 13 new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from signup_sync.app import create_app
from signup_sync.db.session import unit_of_work
from signup_sync.db.types import utcnow
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from signup_sync.sync.schemas import SyncOptions
from signup_sync.webhooks import repository as repo
from signup_sync.webhooks.process import Refused, allowed_path
from signup_sync.webhooks.worker import WorkerOptions, process_due
from tests.fakes import easyappointments as ea_fakes
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.fakes.zoom import CLIENT_ID, CLIENT_SECRET, standard_zoom
from tests.fakes.zoom import serve as serve_zoom
from tests.helpers import LOCAL_OPTIONS, LOCAL_SETTINGS, local_access
from tests.sync_fakes import add_source
from tests.webhook_support import (
    EA_SECRET,
    EB_SECRET,
    ENV,
    Z3_BODY,
    Z3_TS,
    deliveries,
    events,
    post_zoom,
    zoom_config,
)

ANA = ("webinar:84512345678:registrant:8CeUCKjUQXaGdYbNpw0Z5A", "webinar_registered")
NO_WAIT = RetryPolicy(wait_scale=0, attempts=2)
ORG = "215487369012"


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_ZOOM_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_ZOOM_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN", EB_TOKEN)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_EA_TOKEN", ea_fakes.TOKEN)
    yield


@pytest.fixture
def zoom_clock(app: FastAPI) -> None:
    app.state.clock = lambda: Z3_TS + 10


@pytest.fixture
def zoom_url() -> Iterator[str]:
    with serve_zoom(standard_zoom().app()) as url:
        yield url


@pytest.fixture
def eb(eb_server: tuple[Switch, str]) -> tuple[FakeEventbrite, str]:
    return eb_server[0].use(FakeEventbrite(count=6)), eb_server[1]


@pytest.fixture(scope="module")
def ea_server() -> Iterator[ea_fakes.FakeEasyAppointments]:
    yield from ea_fakes.serve()


@pytest.fixture
def ea(ea_server: ea_fakes.FakeEasyAppointments) -> ea_fakes.FakeEasyAppointments:
    ea_server.reset()
    ea_fakes.seed(ea_server)
    return ea_server


def eb_config(base_url: str) -> dict[str, object]:
    return {
        "base_url": base_url,
        "organization_id": ORG,
        "token_env": "SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN",
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EB_WEBHOOK_SECRET",
    }


def order_hook(api_url: str, action: str = "order.placed") -> dict[str, object]:
    endpoint = f"https://sync.example.com/webhooks/eventbrite/1?secret={EB_SECRET}"
    return {
        "config": {"action": action, "webhook_id": "1806556", "endpoint_url": endpoint},
        "api_url": api_url,
    }


# ---- persist, then acknowledge -------------------------------------------------------------


async def test_deliveries_wait_in_the_inbox_until_a_worker_processes_them(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, session_factory, zoom_clock: None
) -> None:
    source = await add_source(session_factory, "z", source_type="zoom", config=zoom_config())
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    assert r.status_code == 200
    # No worker runs in this app: the delivery is kept, nothing is ingested yet.
    pending = (await client.get("/webhooks/inbox", params={"status": "pending"})).json()
    assert [d["id"] for d in pending] == [r.json()["delivery_id"]]
    assert pending[0]["body"] == Z3_BODY
    assert await events(session_factory) == []
    assert await process_due(session_factory, options=LOCAL_OPTIONS) == [
        (r.json()["delivery_id"], "done")
    ]
    assert await events(session_factory) == [(*ANA, "active", source)]
    [done] = (await client.get("/webhooks/inbox", params={"status": "done"})).json()
    assert done["result"]["stored"] == 1 and done["result"]["external_ids"] == [ANA[0]]
    assert await process_due(session_factory, options=LOCAL_OPTIONS) == []


async def test_the_service_worker_processes_deliveries_as_they_arrive(
    settings: Settings, engine, session_factory
) -> None:
    live = create_app(
        settings.model_copy(
            update={"webhook_worker_enabled": True, "webhook_poll_interval_seconds": 30.0}
        )
    )
    async with LifespanManager(live):
        live.state.clock = lambda: Z3_TS + 10
        factory = live.state.session_factory
        await add_source(factory, "z", source_type="zoom", config=zoom_config())
        transport = httpx.ASGITransport(app=live)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await post_zoom(http, Z3_BODY, Z3_TS)
        assert r.status_code == 200
        # The receiver wakes the worker (no 30 s poll wait); bounded wait, not a timing assert.
        for _ in range(400):
            if [d.status for d in await deliveries(factory)] == ["done"]:
                break
            await asyncio.sleep(0.025)
        assert [d.status for d in await deliveries(factory)] == ["done"]
        assert [e[:2] for e in await events(factory)] == [ANA]


async def test_a_claim_that_expired_is_taken_again(
    anon_client: httpx.AsyncClient, session_factory, zoom_clock: None
) -> None:
    await add_source(session_factory, "z", source_type="zoom", config=zoom_config())
    await post_zoom(anon_client, Z3_BODY, Z3_TS)
    start = utcnow()
    async with unit_of_work(session_factory) as session:  # a worker that then dies
        [claim] = await repo.claim_due(session, now=start, ttl_seconds=60, limit=5)
    assert (await deliveries(session_factory))[0].status == "processing"
    assert (
        await process_due(session_factory, now=start + timedelta(seconds=30), options=LOCAL_OPTIONS)
        == []
    )
    assert await process_due(
        session_factory, now=start + timedelta(seconds=61), options=LOCAL_OPTIONS
    ) == [(claim.id, "done")]
    [row] = await deliveries(session_factory)
    assert (row.status, row.attempts) == ("done", 2)
    assert [e[:2] for e in await events(session_factory)] == [ANA]


# ---- webhook and poll converge -------------------------------------------------------------


async def test_zoom_webhook_redelivery_and_poll_give_one_event_each(
    anon_client: httpx.AsyncClient, session_factory, zoom_clock: None, zoom_url: str
) -> None:
    source = await add_source(
        session_factory, "z", source_type="zoom", config=zoom_config(zoom_url)
    )
    await post_zoom(anon_client, Z3_BODY, Z3_TS)
    # Zoom's retry of the same notification, and the same registration sent again later.
    await post_zoom(anon_client, Z3_BODY, Z3_TS + 5)
    resent = Z3_BODY.replace("1717430401000", "1717430406000")
    await post_zoom(anon_client, resent, Z3_TS + 5)
    handled = await process_due(session_factory, options=LOCAL_OPTIONS)
    assert [status for _, status in handled] == ["done", "done"]
    second = (await deliveries(session_factory))[1]
    assert second.result is not None and (second.result["stored"], second.result["duplicates"]) == (
        0,
        1,
    )
    assert [e[:2] for e in await events(session_factory)] == [ANA]

    result = await run_sync(
        session_factory, source, SyncOptions(), retry=NO_WAIT, settings=LOCAL_SETTINGS
    )
    assert result.status == "success", result.error_messages
    assert (result.leads_processed, result.leads_skipped) == (19, 4)
    assert result.details["events_stored"] == 14
    assert result.recovered_by_poll == result.details["recovered_by_poll"] == 14
    stored = await events(session_factory)
    assert len(stored) == 15 and [e[:2] for e in stored].count(ANA) == 1
    assert {e[3] for e in stored} == {source}

    again = await run_sync(
        session_factory, source, SyncOptions(force=True), retry=NO_WAIT, settings=LOCAL_SETTINGS
    )
    assert (again.recovered_by_poll, again.details["events_stored"]) == (0, 0)
    assert len(await events(session_factory)) == 15


@pytest.mark.slow  # see README, Tests
async def test_eventbrite_order_is_fetched_mapped_and_the_poll_adds_only_the_rest(
    anon_client: httpx.AsyncClient, session_factory, eb: tuple[FakeEventbrite, str]
) -> None:
    fake, base_url = eb
    source = await add_source(
        session_factory, "tickets", source_type="eventbrite", config=eb_config(base_url)
    )
    path = f"/webhooks/eventbrite/{source}"
    hook = order_hook(f"{base_url}orders/4512000000/")
    r = await anon_client.post(path, json=hook, params={"secret": EB_SECRET})
    assert r.status_code == 200
    assert [
        s for _, s in await process_due(session_factory, retry=NO_WAIT, options=LOCAL_OPTIONS)
    ] == ["done"]
    assert fake.requests[-1] == (
        "/v3/orders/4512000000/",
        {"expand": "attendees,attendees.event,event"},
    )
    assert await events(session_factory) == [
        ("attendee:7800000000", "event_attended", "active", source),
        ("attendee:7800000000", "event_registered", "active", source),
        ("attendee:7800000001", "event_registered", "active", source),
    ]
    # The order again (another delivery id): processed, nothing new.
    await anon_client.post(path, json={**hook, "n": 2}, params={"secret": EB_SECRET})
    await process_due(session_factory, retry=NO_WAIT, options=LOCAL_OPTIONS)
    assert (await deliveries(session_factory))[1].result["stored"] == 0  # type: ignore[index]

    result = await run_sync(
        session_factory, source, SyncOptions(), retry=NO_WAIT, settings=LOCAL_SETTINGS
    )
    assert result.status == "success", result.error_messages
    assert (result.leads_processed, result.leads_skipped) == (6, 1)
    assert result.recovered_by_poll == 3  # attendees 2, 3 and 4
    assert result.details["events_stored"] == 3
    assert len(await events(session_factory)) == 6


async def test_eventbrite_api_url_elsewhere_is_refused_and_nothing_is_fetched(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient, session_factory, eb
) -> None:
    fake, base_url = eb
    source = await add_source(
        session_factory, "tickets", source_type="eventbrite", config=eb_config(base_url)
    )
    for url in (
        "https://evil.example.com/v3/orders/4512000000/",
        f"{base_url.replace('127.0.0.1', 'localhost')}orders/4512000000/",
    ):
        await anon_client.post(
            f"/webhooks/eventbrite/{source}", json=order_hook(url), params={"secret": EB_SECRET}
        )
    assert [s for _, s in await process_due(session_factory, options=LOCAL_OPTIONS)] == [
        "parked",
        "parked",
    ]
    assert len(fake.requests) == 0
    parked = (await client.get("/webhooks/inbox", params={"status": "parked"})).json()
    assert all("nothing was fetched" in d["last_error"] for d in parked)
    # Eventbrite echoes the webhook URL, secret included: the inbox API blanks it.
    assert "secret=[redacted]" in parked[0]["body"] and EB_SECRET not in str(parked)
    assert await events(session_factory) == []


def test_api_url_must_lie_under_an_allowed_base() -> None:
    bases = ["http://127.0.0.1:8080/v3/", "https://www.eventbriteapi.com/v3/"]
    assert allowed_path("https://www.eventbriteapi.com/v3/orders/1/", bases) == (
        "https://www.eventbriteapi.com/v3/",
        "orders/1/",
    )
    assert allowed_path("http://127.0.0.1:8080/v3/orders/1/", bases)[1] == "orders/1/"
    for bad in (
        "https://www.eventbriteapi.com.evil.example/v3/orders/1/",
        "https://www.eventbriteapi.com@evil.example/v3/orders/1/",
        "https://user@www.eventbriteapi.com/v3/orders/1/",
        "http://www.eventbriteapi.com/v3/orders/1/",
        "https://www.eventbriteapi.com/v3/../admin/",
        "https://www.eventbriteapi.com/v2/orders/1/",
        "http://127.0.0.1:8081/v3/orders/1/",
        "https://www.eventbriteapi.com:99999/v3/",
        "{api-endpoint-to-fetch-object-details}",
    ):
        with pytest.raises(Refused):
            allowed_path(bad, bases)


async def test_easyappointments_webhook_fetches_the_customer_and_converges(
    anon_client: httpx.AsyncClient, session_factory, ea: ea_fakes.FakeEasyAppointments
) -> None:
    config = {
        "base_url": ea.base_url,
        "api_token_env": "SIGNUP_SYNC_SOURCE_TEST_EA_TOKEN",
        "min_interval_seconds": 0,
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET",
        "site_timezone": "UTC",
    }
    source = await add_source(session_factory, "ea", config=config)
    row = {**ea.appointments[1001], "is_unavailability": False}
    body = {"action": "appointment_save", "payload": row}
    r = await anon_client.post(
        "/webhooks/easyappointments", json=body, headers={"X-Ea-Token": EA_SECRET}
    )
    assert r.status_code == 200
    assert [
        s for _, s in await process_due(session_factory, retry=NO_WAIT, options=LOCAL_OPTIONS)
    ] == ["done"]
    assert ("customers/342", {}) in ea.requests
    assert await events(session_factory) == [
        ("appointment:1001", "appointment_booked", "active", source)
    ]
    result = await run_sync(
        session_factory, source, SyncOptions(), retry=NO_WAIT, settings=LOCAL_SETTINGS
    )
    assert result.status == "success", result.error_messages
    assert (result.leads_processed, result.leads_skipped) == (16, 2)
    assert result.recovered_by_poll == 13
    assert len(await events(session_factory)) == 14
    # A deletion (EA's cancellation) arrives only by webhook: the event is kept, cancelled.
    await anon_client.post(
        "/webhooks/easyappointments",
        json={"action": "appointment_delete", "payload": row},
        headers={"X-Ea-Token": EA_SECRET},
    )
    await process_due(session_factory, retry=NO_WAIT, options=LOCAL_OPTIONS)
    assert ("appointment:1001", "appointment_booked", "cancelled", source) in await events(
        session_factory
    )


async def test_easyappointments_without_api_access_is_skipped_with_a_reason(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    await add_source(
        session_factory,
        "ea",
        config={
            "mode": "mysql",
            "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET",
            "site_timezone": "UTC",
        },
    )
    body = {"action": "appointment_save", "payload": {"id": 7, "id_users_customer": 9}}
    await anon_client.post(
        "/webhooks/easyappointments", json=body, headers={"X-Ea-Token": EA_SECRET}
    )
    assert [s for _, s in await process_due(session_factory, options=LOCAL_OPTIONS)] == ["done"]
    [row] = await deliveries(session_factory)
    assert row.result is not None and "customer unknown" in row.result["notes"][0]
    assert await events(session_factory) == []


async def test_easyappointments_mysql_mode_applies_a_deletion_by_id(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    # Issue 14: MySQL mode discarded appointment_delete; the payload's customer may be gone
    # too (a cascade), so the deletion is applied to the stored events by appointment id.
    source = await add_source(
        session_factory,
        "ea",
        config={
            "mode": "mysql",
            "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET",
            "site_timezone": "UTC",
        },
    )
    stored = [
        EventRecord(
            source_type="easyappointments",
            event_type=kind,
            occurred_at=datetime(2024, 6, day, tzinfo=UTC),
            email="gone@example.com",
            external_id="appointment:7",
            source_id=source,
        )
        for kind, day in (("appointment_booked", 1), ("appointment_completed", 9))
    ]
    async with session_factory() as session:
        await ingest(session, stored)
        await session.commit()
    body = {"action": "appointment_delete", "payload": {"id": 7, "id_users_customer": 9}}
    await anon_client.post(
        "/webhooks/easyappointments", json=body, headers={"X-Ea-Token": EA_SECRET}
    )
    assert [s for _, s in await process_due(session_factory)] == ["done"]
    assert sorted(await events(session_factory)) == [
        ("appointment:7", "appointment_booked", "cancelled", source),
        ("appointment:7", "appointment_completed", "cancelled", source),
    ]
    [row] = await deliveries(session_factory)
    assert row.result is not None and row.result["status_changed"] == 2
    # Again (EA has no retries, but a replay): nothing left to change.
    unknown = {"action": "appointment_delete", "payload": {"id": 8, "id_users_customer": 9}}
    await anon_client.post(
        "/webhooks/easyappointments", json=unknown, headers={"X-Ea-Token": EA_SECRET}
    )
    assert [s for _, s in await process_due(session_factory)] == ["done"]


async def test_posh_relay_maps_its_fields_like_the_csv_export(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    config = {
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET",
        "timezone": "America/New_York",
        "relay_columns": {
            "ref": "order_number",
            "show.title": "event_name",
            "show.starts": "event_date",
            "buyer.mail": "email",
            "buyer.first": "first_name",
            "paid_at": "purchased_at",
            "scanned_in": "checked_in",
        },
    }
    source = await add_source(session_factory, "posh", source_type="poshvip", config=config)
    relay = {
        "ref": "PSH-10482",
        "show": {"title": "Rooftop Fridays", "starts": "2024-06-21 22:00"},
        "buyer": {"mail": "XIAOLONG.LI@example.cn", "first": "小龍"},
        "total_paid": 46.5,
        "order_status": "approved",
        "paid_at": "2024-06-18 19:42",
        "scanned_in": True,
    }
    r = await anon_client.post(
        "/webhooks/poshvip",
        json=relay,
        headers={"X-Webhook-Secret": ENV["SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET"]},
    )
    assert r.status_code == 200
    # A relay missing a required field is processed as skipped, with the reason.
    await anon_client.post(
        "/webhooks/poshvip",
        json={"ref": "PSH-1", "buyer": {"mail": "x@example.com"}},
        params={"secret": ENV["SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET"]},
    )
    assert [s for _, s in await process_due(session_factory, options=LOCAL_OPTIONS)] == [
        "done",
        "done",
    ]
    assert await events(session_factory) == [
        ("posh:order:PSH-10482", "event_registered", "active", source),
        ("posh:order:PSH-10482:attended", "event_attended", "active", source),
    ]
    skipped = (await deliveries(session_factory))[1].result
    assert skipped is not None and "event_name" in skipped["notes"][0]
    export = (
        "order_number,event_name,event_date,first_name,email,total_paid,order_status,"
        "checked_in,purchased_at\n"
        "PSH-10482,Rooftop Fridays,2024-06-21 22:00,小龍,xiaolong.li@example.cn,46.50,"
        "approved,yes,2024-06-18 19:42\n"
        "PSH-10483,Rooftop Fridays,2024-06-21 22:00,Sam,sam@example.com,0,approved,no,"
        "2024-06-19 01:05\n"
    ).encode()
    result = await run_sync(
        session_factory, source, SyncOptions(), upload=export, settings=LOCAL_SETTINGS
    )
    assert result.status == "success", result.error_messages
    assert (result.leads_processed, result.recovered_by_poll) == (2, 1)
    assert len(await events(session_factory)) == 3


# ---- failures: retry, park, replay ---------------------------------------------------------


async def test_failing_delivery_backs_off_then_parks_and_can_be_replayed(
    anon_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    session_factory,
    ea: ea_fakes.FakeEasyAppointments,
) -> None:
    config = {
        "base_url": ea.base_url,
        "api_token_env": "SIGNUP_SYNC_SOURCE_TEST_EA_TOKEN",
        "min_interval_seconds": 0,
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET",
        "site_timezone": "UTC",
    }
    await add_source(session_factory, "ea", config=config)
    ea.fail("customers/342", "500", times=4)  # two attempts of two tries each
    row = {**ea.appointments[1001], "is_unavailability": False}
    r = await anon_client.post(
        "/webhooks/easyappointments",
        json={"action": "appointment_save", "payload": row},
        headers={"X-Ea-Token": EA_SECRET},
    )
    delivery = r.json()["delivery_id"]
    options = WorkerOptions(max_attempts=2, retry_base_seconds=60, access=local_access())
    before = utcnow()
    assert await process_due(session_factory, options, retry=NO_WAIT) == [(delivery, "failed")]
    [failed] = (await client.get("/webhooks/inbox", params={"status": "failed"})).json()
    assert failed["attempts"] == 1 and "server error 500" in failed["last_error"]
    [stored] = await deliveries(session_factory)
    assert stored.next_attempt_at >= before + timedelta(seconds=60)  # backed off
    assert await process_due(session_factory, options, retry=NO_WAIT) == []  # not due yet
    later = stored.next_attempt_at + timedelta(seconds=1)
    assert await process_due(session_factory, options, now=later, retry=NO_WAIT) == [
        (delivery, "parked")
    ]
    assert await events(session_factory) == []

    pending_replay = await client.post(f"/webhooks/inbox/{delivery}/replay")
    assert pending_replay.status_code == 200
    assert (pending_replay.json()["status"], pending_replay.json()["attempts"]) == ("pending", 0)
    conflict = await client.post(f"/webhooks/inbox/{delivery}/replay")
    assert conflict.status_code == 409
    assert await process_due(session_factory, options, retry=NO_WAIT) == [(delivery, "done")]
    assert [e[0] for e in await events(session_factory)] == ["appointment:1001"]


async def test_missing_credentials_park_at_once_and_replay_after_the_fix(
    anon_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    session_factory,
    eb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, base_url = eb
    source = await add_source(
        session_factory, "tickets", source_type="eventbrite", config=eb_config(base_url)
    )
    monkeypatch.delenv("SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN")
    hook = order_hook(f"{base_url}orders/4512000000/")
    await anon_client.post(
        f"/webhooks/eventbrite/{source}", json=hook, params={"secret": EB_SECRET}
    )
    [(delivery, status)] = await process_due(session_factory, options=LOCAL_OPTIONS)
    assert status == "parked"
    [parked] = (await client.get("/webhooks/inbox", params={"status": "parked"})).json()
    assert "SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN" in parked["last_error"] and parked["attempts"] == 1
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN", EB_TOKEN)
    assert (await client.post(f"/webhooks/inbox/{delivery}/replay")).status_code == 200
    assert await process_due(session_factory, retry=NO_WAIT, options=LOCAL_OPTIONS) == [
        (delivery, "done")
    ]
    assert len(await events(session_factory)) == 3
    assert orjson.loads((await deliveries(session_factory))[0].body) == hook


async def test_a_stopping_worker_hands_its_claims_back(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    base = "http://eventbrite.test/v3/"
    source = await add_source(
        session_factory, "tickets", source_type="eventbrite", config=eb_config(base)
    )
    for n in (1, 2):
        await anon_client.post(
            f"/webhooks/eventbrite/{source}",
            json=order_hook(f"{base}orders/451200000{n}/"),
            params={"secret": EB_SECRET},
        )
    entered, never = asyncio.Event(), asyncio.Event()

    async def stuck(request: httpx.Request) -> httpx.Response:
        entered.set()
        await never.wait()
        return httpx.Response(500)

    task = asyncio.create_task(
        process_due(session_factory, transport=httpx.MockTransport(stuck), retry=NO_WAIT)
    )
    await entered.wait()
    assert [d.status for d in await deliveries(session_factory)] == ["processing"] * 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [d.status for d in await deliveries(session_factory)] == ["pending"] * 2
