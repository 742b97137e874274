"""Complete erasure: a person who came through every path is gone from the whole database.

Ana arrives through the API (one event, a batch, a conversion), a CSV import, each
connector's sync against its fake server (Eventbrite, Zoom, EasyAppointments in API mode,
a Posh.VIP export), each webhook (Zoom, Eventbrite, EasyAppointments, a Posh relay; one Zoom
delivery still pending) and the tracking API (page, identify, track, alias). After
``POST /privacy/erase`` her email (any case) and phone (any spelling) are in no table of a
``pg_dump`` of the PostgreSQL database, and nowhere in the bytes of the SQLite file, its
WAL or its shared-memory file. A later ``/v1/identify`` with her email stores nothing.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import Lead, TrackingIdentity, TrackingMessage, WebhookDelivery
from signup_sync.db.session import _sqlite_pragmas, create_engine
from signup_sync.settings import Settings, load_settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from signup_sync.webhooks.worker import process_due
from tests.conftest import TOKEN
from tests.fakes import easyappointments as ea_fakes
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.fakes.zoom import CLIENT_ID, CLIENT_SECRET, W1, registrant, standard_zoom
from tests.fakes.zoom import serve as serve_zoom
from tests.helpers import LOCAL_OPTIONS, LOCAL_SETTINGS
from tests.sync_fakes import add_source
from tests.test_tracking_api import WRITE_KEY, basic
from tests.webhook_support import EA_SECRET, EB_SECRET, ENV, POSH_SECRET, Z3_TS, sign, zoom_config

TAG = uuid.uuid4().hex[:8]  # this run's Ana: no earlier test wrote these bytes
LOCAL = f"ana.erase.{TAG}"
ANA = f"{LOCAL}@example.com"
ANA_MIXED = f"Ana.Erase.{TAG}@Example.COM"
NATIONAL = "3055550199"  # +1 305 555 0199, written differently on every path
PHONES = ("+1 305 555 0199", "(305) 555-0199", "+1 (305) 555-0199", "+13055550199")
NO_WAIT = RetryPolicy(wait_scale=0, attempts=2)
ORG = "215487369012"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        webhook_worker_enabled=False,
        segment_write_keys=WRITE_KEY,
        segment_event_map='{"Demo Booked": "appointment_booked"}',
    )


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_ZOOM_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_ZOOM_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN", EB_TOKEN)
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_EA_TOKEN", ea_fakes.TOKEN)
    yield


@pytest.fixture(scope="module")
def ea_server() -> Iterator[ea_fakes.FakeEasyAppointments]:
    yield from ea_fakes.serve()


@pytest.fixture
def zoom_url() -> Iterator[str]:
    fake = standard_zoom()
    fake.registrants[("webinar", W1)].append(
        registrant(
            f"AnaErase{TAG}000000",
            "Ana",
            "Erase",
            ANA_MIXED,
            "approved",
            "2024-06-09T10:00:00Z",
            phone=PHONES[0],
        )
    )
    with serve_zoom(fake.app()) as url:
        yield url


# ---- the paths ------------------------------------------------------------------------------


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "source_type": "manual",
        "event_type": "lead_captured",
        "email": ANA_MIXED,
        "phone": PHONES[0],
        "first_name": "Ana",
        "external_id": f"api-{n}",
        "occurred_at": f"2026-05-0{n}T10:00:00Z",
        "landing_page": f"https://x.example/welcome?email={ANA}",
        "metadata": {"note": f"call {PHONES[1]}", "contact": ANA_MIXED},
        **extra,
    }


async def through_the_api(client: httpx.AsyncClient) -> None:
    r = await client.post("/funnel/event", json=event(1))
    assert r.status_code == 201, r.text
    r = await client.post("/funnel/events/batch", json={"events": [event(2), event(3)]})
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    csv = (
        "email,phone,first_name,date,notes\n"
        f"{ANA_MIXED},{PHONES[1]},Ana,2026-05-04 10:00,met at the fair\n"
    )
    r = await client.post(
        "/import/csv",
        content=csv.encode(),
        params={"source_type": "referral", "default_region": "US"},
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    r = await client.post(
        "/funnel/conversion", json={"email": ANA, "user_id": ANA, "value": "49.00"}
    )
    assert r.status_code == 201, r.text


async def through_the_connectors(
    factory: Any, eb: tuple[Switch, str], zoom_url: str, ea: ea_fakes.FakeEasyAppointments
) -> None:
    switch, eb_url = eb
    fake_eb = switch.use(FakeEventbrite(count=3, phones=True))
    fake_eb.update(1, email=ANA_MIXED)
    fake_eb.phone_of = lambda person: PHONES[2] if person == 1 else "+44 20 7946 0000"  # type: ignore[method-assign]
    ea.users[342].update(email=f" {ANA_MIXED} ", phone_number=PHONES[0])
    sources = {
        "eventbrite": await add_source(
            factory,
            "tickets",
            source_type="eventbrite",
            config={
                "base_url": eb_url,
                "organization_id": ORG,
                "token_env": "SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN",
                "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EB_WEBHOOK_SECRET",
            },
        ),
        "zoom": await add_source(
            factory, "webinars", source_type="zoom", config=zoom_config(zoom_url)
        ),
        "easyappointments": await add_source(
            factory,
            "ea",
            config={
                "base_url": ea.base_url,
                "api_token_env": "SIGNUP_SYNC_SOURCE_TEST_EA_TOKEN",
                "min_interval_seconds": 0,
                "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET",
                "site_timezone": "UTC",
            },
        ),
        "poshvip": await add_source(
            factory,
            "posh",
            source_type="poshvip",
            config={"webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET"},
        ),
    }
    for kind in ("eventbrite", "zoom", "easyappointments"):
        result = await run_sync(factory, sources[kind], retry=NO_WAIT, settings=LOCAL_SETTINGS)
        assert result.status in ("success", "partial"), (kind, result.error_messages)
    export = (
        "order_number,event_name,event_date,first_name,email,phone,total_paid,order_status,"
        "checked_in,purchased_at\n"
        f"PSH-{TAG},Rooftop Fridays,2024-06-21 22:00,Ana,{ANA_MIXED},{PHONES[1]},46.50,"
        "approved,yes,2024-06-18 19:42\n"
    ).encode()
    result = await run_sync(factory, sources["poshvip"], upload=export, settings=LOCAL_SETTINGS)
    assert result.status == "success", result.error_messages


def zoom_body(event_name: str, ts_ms: int) -> bytes:
    body = {
        "event": event_name,
        "event_ts": ts_ms,
        "payload": {
            "account_id": "AbCdEfGhIjKlMnOpQrStUv",
            "object": {
                "id": int(W1),
                "uuid": "Xy7q8JmXQ6KJ2y7f1c3kOw==",
                "registrant": {
                    "id": f"AnaHook{TAG}",
                    "email": ANA_MIXED,
                    "first_name": "Ana",
                    "last_name": "Erase",
                    "phone": PHONES[3],
                    "status": "approved",
                },
            },
        },
    }
    return orjson.dumps(body)


async def through_the_webhooks(
    anon: httpx.AsyncClient, app: FastAPI, factory: Any, ea_row: dict[str, Any], eb_url: str
) -> None:
    app.state.clock = lambda: Z3_TS + 10
    for ts in (Z3_TS * 1000, Z3_TS * 1000 + 1):
        raw = zoom_body("webinar.registration_created", ts)
        r = await anon.post("/webhooks/zoom", content=raw, headers=sign(raw, Z3_TS))
        assert r.status_code == 200, r.text
    hook = {
        "config": {"action": "order.placed", "webhook_id": "1806556"},
        "api_url": f"{eb_url}orders/4512000000/",
    }
    r = await anon.post(
        "/webhooks/eventbrite",
        json=hook,
        params={"secret": EB_SECRET},
        headers={"X-Eventbrite-Delivery": f"d-{TAG}"},
    )
    assert r.status_code == 200, r.text
    r = await anon.post(
        "/webhooks/easyappointments",
        json={"action": "appointment_save", "payload": ea_row},
        headers={"X-Ea-Token": EA_SECRET},
    )
    assert r.status_code == 200, r.text
    relay = {
        "order_number": f"PSH-R-{TAG}",
        "event_name": "Rooftop Fridays",
        "event_date": "2024-06-21 22:00",
        "buyer": {"email": ANA_MIXED, "phone": PHONES[2]},
        "total_paid": 46.5,
        "purchased_at": "2024-06-18 19:42",
    }
    r = await anon.post("/webhooks/poshvip", json=relay, headers={"X-Webhook-Secret": POSH_SECRET})
    assert r.status_code == 200, r.text
    handled = await process_due(factory, LOCAL_OPTIONS, retry=NO_WAIT)
    assert [s for _, s in handled] == ["done"] * 5, handled
    # One more, left pending in the inbox: erasure must not wait for the worker.
    raw = zoom_body("webinar.registration_approved", Z3_TS * 1000 + 2)
    r = await anon.post("/webhooks/zoom", content=raw, headers=sign(raw, Z3_TS))
    assert r.status_code == 200, r.text


async def through_tracking(client: httpx.AsyncClient) -> None:
    traits = {"email": ANA_MIXED, "phone": PHONES[0], "name": "Ana Erase"}
    messages = [
        (
            "page",
            {
                "anonymousId": f"anon-{TAG}",
                "context": {"page": {"url": "https://x.example/?utm_source=ads"}},
            },
        ),
        ("identify", {"anonymousId": f"anon-{TAG}", "userId": f"u-{TAG}", "traits": traits}),
        ("track", {"userId": f"u-{TAG}", "event": "Demo Booked", "properties": {"email": ANA}}),
        ("alias", {"previousId": f"u-{TAG}", "userId": ANA}),
    ]
    for n, (kind, body) in enumerate(messages):
        message = {"type": kind, "messageId": f"{kind}-{TAG}-{n}", **body}
        r = await client.post(f"/v1/{kind}", json=message, headers=basic(WRITE_KEY))
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


# ---- the search -----------------------------------------------------------------------------

# Stricter than the service's matcher: the digits in order, whatever is around them.
_PHONE_BYTES = re.compile(rb"\D{0,3}".join(d.encode() for d in NATIONAL))


def leftovers(data: bytes) -> list[str]:
    """Where Ana's email (any case) or phone (any spelling) appears in raw bytes."""
    found = []
    lowered = data.lower()
    for needle in (ANA.encode(), LOCAL.encode()):
        for m in re.finditer(re.escape(needle), lowered):
            found.append(data[max(0, m.start() - 60) : m.end() + 20].decode("utf-8", "replace"))
    for m in _PHONE_BYTES.finditer(data):
        found.append(data[max(0, m.start() - 60) : m.end() + 20].decode("utf-8", "replace"))
    return found


def dump(database_url: str) -> bytes:
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    done = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True)
    return done.stdout


def sqlite_files(database_url: str) -> dict[str, bytes]:
    path = Path(database_url.split(":///", 1)[1])
    return {
        p.name: p.read_bytes()
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if p.exists()
    }


async def everything(database_url: str, backend: str) -> dict[str, bytes]:
    if backend == "postgresql":
        return {"pg_dump": dump(database_url)}
    return sqlite_files(database_url)


async def test_erasure_leaves_nothing_of_a_person_who_came_through_every_path(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    app: FastAPI,
    engine: AsyncEngine,
    session_factory: Any,
    database_url: str,
    backend: str,
    eb_server: tuple[Switch, str],
    zoom_url: str,
    ea_server: ea_fakes.FakeEasyAppointments,
) -> None:
    ea_server.reset()
    ea_fakes.seed(ea_server)
    await through_the_api(client)
    await through_the_connectors(session_factory, eb_server, zoom_url, ea_server)
    ea_row = {**ea_server.appointments[1001], "is_unavailability": False}  # customer 342: Ana
    await through_the_webhooks(anon_client, app, session_factory, ea_row, eb_server[1])
    await through_tracking(client)
    async with engine.connect() as conn:
        [lead] = (await conn.execute(select(Lead).where(Lead.email == ANA))).all()
        assert lead.phone_e164 == "+1" + NATIONAL
        others = await conn.scalar(select(func.count()).select_from(Lead))
    if backend == "sqlite":
        # As SQLite's own checkpoints do in a running service: her rows reach the main file,
        # where only secure_delete keeps a deleted row from staying readable in free space.
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = await everything(database_url, backend)
    main = "pg_dump" if backend == "postgresql" else Path(database_url).name
    assert len(leftovers(before[main])) > 20, "the search finds her"

    r = await client.post("/privacy/erase", json={"email": ANA})
    assert r.status_code == 200, r.text
    after = await everything(database_url, backend)
    found = {name: leftovers(data) for name, data in after.items()}
    assert found == {name: [] for name in after}, found
    out = r.json()
    assert out["leads_deleted"] == 1 and out["tombstones_added"] == 2
    assert out["webhook_deliveries_deleted"] == 6  # 2+1 Zoom, Eventbrite, EA, Posh
    assert out["tracking_messages_deleted"] == 4 and out["tracking_identities_deleted"] >= 2
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Lead)) == (others or 0) - 1
        left = (await conn.execute(select(WebhookDelivery))).all()
        assert left == [], left

    # Later: her identify is answered and stored nowhere, again.
    message = {
        "type": "identify",
        "messageId": f"again-{TAG}",
        "userId": f"u2-{TAG}",
        "traits": {"email": ANA_MIXED, "phone": PHONES[0]},
    }
    r = await client.post("/v1/identify", json=message, headers=basic(WRITE_KEY))
    assert r.status_code == 200 and r.json()["dropped"] == 1, r.text
    async with engine.connect() as conn:
        for model in (TrackingMessage, TrackingIdentity):
            assert await conn.scalar(select(func.count()).select_from(model)) == 0
    # A webhook delivery of hers arriving later: refused at processing and not kept.
    raw = zoom_body("webinar.registration_created", Z3_TS * 1000 + 3)
    r = await anon_client.post("/webhooks/zoom", content=raw, headers=sign(raw, Z3_TS))
    assert r.status_code == 200, r.text
    assert [s for _, s in await process_due(session_factory, LOCAL_OPTIONS, retry=NO_WAIT)] == [
        "done"
    ]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    again = await client.post("/privacy/erase", json={"email": ANA})  # checkpoints again
    assert again.status_code == 200
    after = await everything(database_url, backend)
    assert {name: leftovers(data) for name, data in after.items()} == {n: [] for n in after}


async def test_sqlite_connections_overwrite_what_they_delete(tmp_path: Path) -> None:
    """The engine turns secure_delete on. (This machine's SQLite build already defaults to
    it; builds without SQLITE_SECURE_DELETE do not, so the test starts from OFF.)"""
    path = tmp_path / "secure.db"
    engine = create_engine(load_settings(database_url=f"sqlite:///{path}"))
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA secure_delete=OFF")  # a build whose default is off
        _sqlite_pragmas(raw, None)
        raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
        rows = [(f"keep-{i}",) for i in range(50)] + [(ANA,)]
        raw.executemany("INSERT INTO t (x) VALUES (?)", rows)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.execute("DELETE FROM t WHERE x = ?", (ANA,))
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
        assert ANA.encode() not in path.read_bytes()
    finally:
        await engine.dispose()
