"""Shared fixtures: one suite, run against the embedded SQLite and a real PostgreSQL.

PostgreSQL comes from SIGNUP_SYNC_TEST_PG_URL (default: the local server's `test`
database). Each test session creates its own throw-away database there. When no server
answers, PostgreSQL tests are skipped with a message; under CI (CI=true) they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.app import create_app
from signup_sync.db.models import Base
from signup_sync.db.session import create_engine
from signup_sync.settings import ENV_FILE_VARIABLE, Settings, load_settings
from signup_sync.upgrade import upgrade as upgrade_schema
from tests.fakes.eventbrite import Switch
from tests.fakes.eventbrite import serve as serve_eventbrite

TOKEN = "test-token-primary-0001"
TOKEN_ROTATED = "test-token-rotated-0002"
# Role tokens: read-only (analytics, leads, exports, dashboard) and ingest-only.
READ_TOKEN = "test-token-read-0003"
READ_TOKEN_ROTATED = "test-token-read-rotated-0004"
INGEST_TOKEN = "test-token-ingest-0005"
PG_URL = os.environ.get("SIGNUP_SYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]
# A stray `.env` in the working directory must not change what the tests run with (child
# processes inherit this too); tests of the dotenv file set their own.
os.environ[ENV_FILE_VARIABLE] = ""


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion on a private loop (session set-up outside the test loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _create_database(name: str) -> None:
    admin = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _migrate(url: str) -> None:
    engine = create_engine(load_settings(database_url=url))
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"signup_sync_test_{uuid.uuid4().hex[:12]}"
    try:
        run_async(_create_database(name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(f"{message}; set SIGNUP_SYNC_TEST_PG_URL to run the PostgreSQL tests")
    try:
        yield _with_database(PG_URL, name)
    finally:
        run_async(_drop_database(name))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of each backend, shared by the session (tables emptied per test)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "signup_sync_test.db"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
    run_async(_migrate(url))
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


async def truncate_all(engine: AsyncEngine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=f"{TOKEN},{TOKEN_ROTATED}",
        read_tokens=f"{READ_TOKEN},{READ_TOKEN_ROTATED}",
        ingest_tokens=INGEST_TOKEN,
        auto_migrate=False,
        # Tests drive the scheduler by calling run_due_syncs; no background ticks.
        sync_scheduler_enabled=False,
        # Tests drive the webhook worker themselves (worker tests start it explicitly).
        webhook_worker_enabled=False,
        # The fake source servers listen on 127.0.0.1; the default policy refuses loopback.
        outbound_allow="127.0.0.0/8",
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the test database, emptied before the test."""
    engine = create_engine(settings)
    await truncate_all(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:
        yield http


def _bearer_client(app: FastAPI, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
async def read_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a read-only token (SIGNUP_SYNC_READ_TOKENS)."""
    async with _bearer_client(app, READ_TOKEN) as http:
        yield http


@pytest.fixture
async def ingest_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding an ingest-only token (SIGNUP_SYNC_INGEST_TOKENS)."""
    async with _bearer_client(app, INGEST_TOKEN) as http:
        yield http


@pytest.fixture
async def anon_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


@pytest.fixture
def session_factory(app: FastAPI) -> Any:
    return app.state.session_factory


def pytest_report_header(config: pytest.Config) -> str:
    return f"signup-sync: PostgreSQL tests use {PG_URL} (CI={IN_CI})"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def eb_server() -> Iterator[tuple[Switch, str]]:
    """The fake Eventbrite API over real HTTP; ``switch.use(FakeEventbrite(...))`` per test."""
    switch = Switch()
    with serve_eventbrite(switch) as base_url:
        yield switch, base_url
