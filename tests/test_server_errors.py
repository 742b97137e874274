"""A 5xx that still happens, over a real uvicorn server: the JSON error body with the request
id, and the keep-alive connection stays usable (issue 13, finding 5)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import text

from signup_sync.api.errors import install_error_handlers
from signup_sync.api.middleware import RequestContextMiddleware
from signup_sync.db import migrate
from signup_sync.db.session import create_engine
from signup_sync.settings import load_settings
from tests.conftest import run_async
from tests.fresh_db import fresh_database
from tests.server import run_server


async def _migrate_then_break(url: str) -> None:
    """Migrate, then rename the sources table away: GET /sources becomes an internal error
    (a bad statement, not a lost connection), whatever the backend."""
    engine = create_engine(load_settings(database_url=url))
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE funnel_sources RENAME TO funnel_sources_gone"))
    finally:
        await engine.dispose()


def test_an_internal_error_is_json_with_the_request_id_and_keeps_the_connection(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        run_async(_migrate_then_break(url))
        with run_server(url, tmp_path) as server:
            where = urlsplit(server.url)
            conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
            auth = {"Authorization": f"Bearer {server.token}", "X-Request-ID": "req-broken-1"}
            conn.request("GET", "/sources", headers=auth)
            broken = conn.getresponse()
            body = broken.read()
            assert broken.status == 500, body
            assert broken.getheader("content-type") == "application/json"
            assert broken.getheader("x-request-id") == "req-broken-1"
            assert (broken.getheader("connection") or "").lower() != "close"
            detail = orjson.loads(body)
            assert detail["error"] == "internal_error"
            assert detail["request_id"] == "req-broken-1"
            assert "funnel_sources" not in body.decode()  # no SQL, no internals
            sock = conn.sock
            assert sock is not None
            conn.request("GET", "/", headers=auth)
            after = conn.getresponse()
            after.read()
            assert after.status == 200
            assert conn.sock is sock  # the same TCP connection answered
            conn.close()
            assert "req-broken-1" in server.logs()


async def test_an_os_error_outside_the_database_is_a_500_not_an_outage() -> None:
    """Only errors raised inside the database stack are 503 database_unavailable: an OSError
    from anything else (a file-system lookup of a zone name) is a bug, answered 500."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=1024)

    @app.get("/fs")
    async def fs() -> None:
        raise OSError(36, "File name too long")

    @app.get("/db")
    async def db() -> None:
        engine = create_engine(
            load_settings(
                database_url="postgresql://postgres@127.0.0.1:9/none", db_timeout_seconds=1
            )
        )
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.get("/fs")
        assert r.status_code == 500
        assert r.json()["error"] == "internal_error"
        assert "retry-after" not in r.headers
        r = await http.get("/db")
        assert r.status_code == 503
        assert r.json()["error"] == "database_unavailable"
