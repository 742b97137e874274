"""GET / and GET /health."""

from __future__ import annotations

import time

import httpx
from asgi_lifespan import LifespanManager

from signup_sync.app import create_app
from signup_sync.settings import load_settings
from tests.conftest import TOKEN


async def test_root_is_open_and_describes_the_service(anon_client: httpx.AsyncClient) -> None:
    r = await anon_client.get("/")
    assert r.status_code == 200
    body = r.json()
    assert body["service"] == "SignUp_Sync"
    assert body["docs"] == "/docs"
    assert r.headers["x-request-id"]


async def test_health_reports_database_and_latency(
    anon_client: httpx.AsyncClient, backend: str
) -> None:
    r = await anon_client.get("/health")
    assert r.status_code == 200
    db = r.json()["database"]
    assert db["status"] == "ok"
    assert db["backend"] == backend
    assert db["latency_ms"] >= 0


async def test_health_is_503_with_a_reason_when_the_database_is_down(tmp_path) -> None:
    # One PostgreSQL URL whose port nothing listens on, one SQLite file that cannot exist.
    for url in (
        "postgresql://postgres@127.0.0.1:9/nowhere",
        f"sqlite:///{tmp_path}/missing-dir/x.db",
    ):
        settings = load_settings(
            database_url=url,
            service_tokens=TOKEN,
            auto_migrate=False,
            health_timeout_seconds=1.0,
            db_timeout_seconds=1.0,
        )
        app = create_app(settings)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                started = time.monotonic()
                r = await http.get("/health")
                elapsed = time.monotonic() - started
        assert r.status_code == 503, url
        body = r.json()
        assert body["status"] == "unhealthy"
        assert body["database"]["status"] == "unavailable"
        assert body["database"]["error"]
        assert elapsed < 5
