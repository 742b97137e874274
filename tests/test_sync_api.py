"""``POST /sync/...`` and ``GET /sync/status/...`` over the fake connector."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.app import create_app
from signup_sync.db.models import FunnelSource, FunnelSyncLog
from signup_sync.settings import Settings
from tests.conftest import TOKEN
from tests.sync_fakes import FakeConnector, fake_connector

__all__ = ["fake_connector"]

SEED_FIELDS = {
    "status",
    "source_type",
    "source_name",
    "leads_processed",
    "leads_created",
    "leads_updated",
    "leads_skipped",
    "errors_count",
    "error_messages",
    "started_at",
    "completed_at",
    "duration_seconds",
    "sync_log_id",
    "summary",
}


async def add(client: httpx.AsyncClient, name: str = "Main", **body: object) -> int:
    payload = {"source_type": "easyappointments", "name": name, **body}
    r = await client.post("/sources", json=payload)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_the_seed_curl_with_no_source_configured_answers_skipped(
    client: httpx.AsyncClient,
) -> None:
    # curl -X POST http://localhost:8001/sync/easyappointments -H "Authorization: Bearer $T"
    r = await client.post("/sync/easyappointments")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= SEED_FIELDS
    assert body["status"] == "skipped" and body["source_type"] == "easyappointments"
    assert body["leads_processed"] == body["leads_created"] == body["errors_count"] == 0
    assert body["sync_log_id"] is None
    assert "No active easyappointments source is configured" in body["summary"]["message"]
    assert body["summary"]["sources"] == []


async def test_a_sync_answers_the_seed_result_with_a_per_source_summary(
    client: httpx.AsyncClient, fake_connector: type[FakeConnector]
) -> None:
    sid = await add(client)
    r = await client.post("/sync/easyappointments")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= SEED_FIELDS
    assert body["status"] == "success" and body["source_name"] == "Main"
    assert (body["leads_processed"], body["leads_created"], body["leads_updated"]) == (7, 4, 1)
    assert (body["leads_skipped"], body["errors_count"]) == (2, 1)
    assert body["sync_log_id"] == body["sync_log_ids"][0]
    [one] = body["summary"]["sources"]
    assert one["source_id"] == sid and one["leads_created"] == 4
    assert body["summary"]["sources_succeeded"] == 1

    again = (await client.post("/sync/easyappointments", json={"force_sync": True})).json()
    assert (again["leads_processed"], again["leads_created"], again["leads_updated"]) == (7, 0, 0)


async def test_every_active_source_of_the_type_runs_and_counts_are_summed(
    client: httpx.AsyncClient, fake_connector: type[FakeConnector]
) -> None:
    FakeConnector.data["other"] = [dict(r) for r in FakeConnector.data["default"][:2]]
    for new_id, row in zip((100, 101), FakeConnector.data["other"], strict=True):
        row["id"] = new_id  # new appointments of people the first source brings
    first = await add(client, "One")
    second = await add(client, "Two", config={"dataset": "other"})
    off = await add(client, "Off")
    await client.delete(f"/sources/{off}")

    body = (await client.post("/sync/easyappointments")).json()
    assert [s["source_id"] for s in body["summary"]["sources"]] == [first, second]
    assert body["leads_processed"] == 9
    assert body["leads_created"] == 4 and body["leads_updated"] == 1 + 2
    assert len(body["sync_log_ids"]) == 2

    only = (await client.post("/sync/easyappointments", json={"source_id": second})).json()
    assert [s["source_id"] for s in only["summary"]["sources"]] == [second]
    r = await client.post("/sync/easyappointments", json={"source_id": off})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source_id"


async def test_wait_false_answers_202_with_the_log_id_and_runs_in_the_background(
    app: FastAPI, client: httpx.AsyncClient, fake_connector: type[FakeConnector]
) -> None:
    await add(client)
    FakeConnector.hold = asyncio.Event()
    hold = FakeConnector.hold
    r = await client.post("/sync/easyappointments", json={"wait": False})
    assert r.status_code == 202, r.text
    log_id = r.json()["sync_log_id"]
    assert log_id and r.json()["status"] == "running"
    status = (await client.get("/sync/status/easyappointments")).json()
    assert status["is_running"] is True
    assert status["sources"][0]["running_sync_log_id"] == log_id
    assert status["sources"][0]["recent_logs"][0]["status"] == "running"

    hold.set()
    await app.state.sync.background.join()
    status = (await client.get("/sync/status/easyappointments")).json()
    assert status["is_running"] is False and status["last_sync_status"] == "success"
    assert status["sources"][0]["recent_logs"][0]["id"] == log_id
    assert status["sources"][0]["recent_logs"][0]["leads_created"] == 4


async def test_a_second_request_while_one_runs_gets_409_with_its_log_id(
    client: httpx.AsyncClient, fake_connector: type[FakeConnector]
) -> None:
    await add(client)
    FakeConnector.hold = asyncio.Event()
    FakeConnector.entered = asyncio.Event()
    hold = FakeConnector.hold
    first = asyncio.create_task(client.post("/sync/easyappointments"))
    await FakeConnector.entered.wait()
    second = await client.post("/sync/easyappointments")
    assert second.status_code == 409, second.text
    running_id = second.json()["sync_log_id"]
    assert running_id and str(running_id) in second.json()["detail"]
    # /sync/all does not fail: the busy source is reported skipped
    every = (await client.post("/sync/all")).json()
    assert every["status"] == "skipped"
    assert every["summary"]["sources"][0]["sync_log_id"] == running_id
    hold.set()
    done = await first
    assert done.status_code == 200 and done.json()["sync_log_id"] == running_id


async def test_sync_all_runs_every_active_source_and_one_failure_does_not_stop_the_rest(
    client: httpx.AsyncClient, fake_connector: type[FakeConnector]
) -> None:
    zoom = await client.post("/sources", json={"source_type": "zoom", "name": "Webinars"})
    ea = await add(client)
    await client.post("/sources", json={"source_type": "manual", "name": "List"})
    body = (await client.post("/sync/all")).json()
    assert body["source_type"] == "all" and body["status"] == "partial"
    results = {s["source_id"]: s for s in body["summary"]["sources"]}
    assert set(results) == {zoom.json()["id"], ea}  # the manual source has nothing to pull
    assert results[ea]["status"] == "success"
    failed = results[zoom.json()["id"]]
    assert failed["status"] == "failed" and "no connector" in failed["error_messages"][0]
    assert body["summary"]["sources_failed"] == 1 and body["leads_created"] == 4


async def test_status_reports_each_source_success_rate_and_the_last_10_logs(
    client: httpx.AsyncClient, fake_connector: type[FakeConnector]
) -> None:
    sid = await add(client, schedule="15 6 * * *")
    await client.post("/sync/easyappointments")
    FakeConnector.fail = (1, "fatal")
    await client.post("/sync/easyappointments", json={"force_sync": True})
    FakeConnector.fail = None
    for _ in range(10):
        await client.post("/sync/easyappointments")
    r = await client.get("/sync/status/easyappointments")
    assert r.status_code == 200
    body = r.json()
    assert body["has_connector"] is True and body["last_sync_status"] == "success"
    [source] = body["sources"]
    assert source["source_id"] == sid and source["is_running"] is False
    assert source["success_rate"] == round(11 / 12, 4)
    assert len(source["recent_logs"]) == 10
    assert source["next_scheduled_at"].endswith("06:15:00Z")
    ids = [log["id"] for log in source["recent_logs"]]
    assert ids == sorted(ids, reverse=True)
    empty = (await client.get("/sync/status/zoom")).json()
    assert empty["sources"] == [] and empty["has_connector"] is False


@pytest.mark.parametrize("path", ["/sync/myspace", "/sync/status/myspace"])
async def test_an_unknown_source_type_is_a_404_listing_the_valid_ones(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await (client.post(path) if path.startswith("/sync/m") else client.get(path))
    assert r.status_code == 404
    assert "easyappointments" in r.json()["detail"]
    assert "zoom" in r.json()["valid_source_types"]


async def test_a_push_only_type_cannot_be_synced_and_bad_bodies_are_named(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/sync/manual")
    assert r.status_code == 422 and "POST /funnel/event" in r.json()["detail"]
    r = await client.post(
        "/sync/zoom", json={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    )
    assert r.status_code == 422
    r = await client.post("/sync/zoom", json={"force": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "force"
    r = await client.post("/sync/zoom", json={"source_id": 12345})
    assert r.status_code == 404


async def test_sync_endpoints_need_the_token(anon_client: httpx.AsyncClient) -> None:
    assert (await anon_client.post("/sync/easyappointments")).status_code == 401
    assert (await anon_client.get("/sync/status/zoom")).status_code == 401


async def test_stopping_the_service_closes_a_background_sync_as_interrupted(
    settings: Settings, engine: AsyncEngine, fake_connector: type[FakeConnector]
) -> None:
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as http:
            await add(http)
            FakeConnector.hold = asyncio.Event()
            FakeConnector.entered = asyncio.Event()
            r = await http.post("/sync/easyappointments", json={"wait": False})
            assert r.status_code == 202
            await FakeConnector.entered.wait()
        log_id = r.json()["sync_log_id"]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(FunnelSyncLog.status, FunnelSyncLog.summary).where(
                    FunnelSyncLog.id == log_id
                )
            )
        ).one()
        lease = (await conn.execute(select(FunnelSource.lease_owner))).scalar_one()
    assert row.status == "failed" and "interrupted" in row.summary
    assert lease is None


@pytest.mark.slow  # see README, Tests
def test_the_openapi_schema_describes_the_sync_endpoints(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert {"/sync/{source_type}", "/sync/all", "/sync/status/{source_type}", "/sources"} <= set(
        paths
    )
