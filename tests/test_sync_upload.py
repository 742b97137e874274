"""Posh.VIP through the API: an uploaded export goes to the engine; scheduling needs a file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelSource
from signup_sync.db.session import create_session_factory
from signup_sync.settings import Settings
from signup_sync.sources import REGISTRY
from signup_sync.sources.base import needs_upload
from signup_sync.sync.scheduler import run_due_syncs
from tests.sources.test_poshvip import EXPORT, TZ
from tests.sync_fakes import add_source

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def settings(settings: Settings, import_dir: Path) -> Settings:
    """The suite's settings with SIGNUP_SYNC_IMPORT_DIR: file_path is read only there."""
    return settings.model_copy(update={"import_dir": import_dir})


# The documented export: 13 rows, 2 skipped, 8 new people, 2 rows for known ones.
FULL = (13, 8, 2, 2)


async def add_posh(client: httpx.AsyncClient, name: str = "Rooftop", **config: object) -> int:
    body = {"source_type": "poshvip", "name": name, "config": {"timezone": TZ, **config}}
    r = await client.post("/sources", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def counts(body: dict[str, object]) -> tuple[object, ...]:
    return tuple(body[k] for k in ("leads_processed", "leads_created", "leads_updated"))


async def test_a_multipart_upload_syncs_the_export(client: httpx.AsyncClient) -> None:
    sid = await add_posh(client)
    files = {"file": ("posh-export.csv", EXPORT, "text/csv")}
    r = await client.post("/sync/poshvip", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    assert (*counts(body), body["leads_skipped"]) == FULL
    assert body["summary"]["sources"][0]["source_id"] == sid

    # Same file again, as a text/csv body with options in the query: nothing new.
    again = await client.post(
        "/sync/poshvip",
        params={"source_id": str(sid), "force_sync": "true"},
        content=EXPORT,
        headers={"Content-Type": "text/csv"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "success"
    assert counts(again.json()) == (13, 0, 0)

    status = (await client.get("/sync/status/poshvip")).json()
    [source] = status["sources"]
    assert (source["last_sync_status"], source["total_leads_captured"]) == ("success", 8)


async def test_form_fields_are_the_options(client: httpx.AsyncClient) -> None:
    await add_posh(client)
    files = {"file": ("posh.csv", EXPORT, "text/csv")}
    r = await client.post("/sync/poshvip", files=files, data={"dry_run": "true"})
    assert r.status_code == 200, r.text
    assert (r.json()["dry_run"], r.json()["sync_log_id"]) == (True, None)
    assert counts(r.json()) == (13, 8, 2)
    r = await client.post("/sync/poshvip", files=files, data={"dry_run": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dry_run"
    r = await client.post("/sync/poshvip", data={"dry_run": "true"})
    assert r.status_code == 422  # a form without the file
    r = await client.post(
        "/sync/poshvip", content=b"x", headers={"Content-Type": "multipart/form-data; boundary=z"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"


async def test_without_a_file_a_posh_source_needs_one(client: httpx.AsyncClient) -> None:
    sid = await add_posh(client)
    r = await client.post("/sync/poshvip")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "file"
    assert "file_path or file_url" in r.json()["detail"]
    # /sync/all reports it skipped, and runs the rest.
    r = await client.post("/sync/all")
    assert r.status_code == 200, r.text
    [only] = r.json()["summary"]["sources"]
    assert (only["source_id"], only["status"]) == (sid, "skipped")
    assert "needs an uploaded export" in only["message"]


async def test_a_configured_file_path_syncs_without_an_upload(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "posh.csv"
    path.write_bytes(EXPORT)
    await add_posh(client, file_path=str(path))
    r = await client.post("/sync/poshvip")
    assert r.status_code == 200, r.text
    assert (*counts(r.json()), r.json()["leads_skipped"]) == FULL


async def test_an_upload_is_for_one_source_of_a_file_type(client: httpx.AsyncClient) -> None:
    files = {"file": ("posh.csv", EXPORT, "text/csv")}
    r = await client.post("/sync/easyappointments", files=files)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    r = await client.post("/sync/zoom", content=EXPORT, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and "poshvip" in r.json()["detail"]
    first = await add_posh(client, "One")
    await add_posh(client, "Two")
    r = await client.post("/sync/poshvip", files=files)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source_id"
    r = await client.post("/sync/poshvip", files=files, data={"source_id": str(first)})
    assert r.status_code == 200 and r.json()["summary"]["sources"][0]["source_id"] == first


async def test_a_bad_json_body_is_still_a_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/sync/poshvip", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    r = await client.post("/sync/poshvip", json=[1, 2])
    assert r.status_code == 422
    r = await client.post(
        "/sync/poshvip", params={"dry_run": "perhaps"}, content=EXPORT,
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dry_run"


def test_needs_upload_follows_the_config() -> None:
    posh = REGISTRY["poshvip"]
    assert needs_upload(posh, {})
    assert not needs_upload(posh, {"file_path": "/data/posh.csv"})
    assert not needs_upload(posh, {"file_url": "https://files.example.com/posh.csv"})
    assert not needs_upload(REGISTRY["zoom"], {})


async def test_the_scheduler_runs_posh_sources_with_a_file_only(
    engine: AsyncEngine, tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "posh.csv"
    path.write_bytes(EXPORT)
    factory = create_session_factory(engine)
    with_file = await add_source(
        factory, "file", source_type="poshvip",
        config={"file_path": str(path), "timezone": TZ}, created_at=LONG_AGO,
    )  # fmt: skip
    await add_source(
        factory, "upload", source_type="poshvip", config={"timezone": TZ}, created_at=LONG_AGO
    )
    results = await run_due_syncs(
        factory, datetime(2030, 5, 1, 10, 0, tzinfo=UTC), settings=settings
    )
    assert [(r.source_id, r.status, r.leads_created) for r in results] == [
        (with_file, "success", 8)
    ]
    async with factory() as session:
        statuses = dict((await session.execute(
            select(FunnelSource.name, FunnelSource.last_sync_status))).all())  # fmt: skip
    assert statuses == {"file": "success", "upload": None}


async def test_status_shows_no_next_run_for_an_upload_only_source(
    client: httpx.AsyncClient,
) -> None:
    """Issue 18, point 12: the scheduler never runs a source that waits for an upload."""
    await add_posh(client, "upload")
    await add_posh(client, "fetched", file_url="https://files.example.com/posh.csv")
    status = (await client.get("/sync/status/poshvip")).json()
    next_runs = {s["source_name"]: s["next_scheduled_at"] for s in status["sources"]}
    assert next_runs["upload"] is None
    assert next_runs["fetched"] is not None
