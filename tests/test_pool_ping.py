"""Pooled connections: idle ones are pinged (a dead one is replaced), busy ones are not."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from signup_sync.db import session as db_session
from signup_sync.db.session import create_engine
from signup_sync.settings import Settings

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def pg_settings(settings: Settings, backend: str) -> Settings:
    if backend != "postgresql":
        pytest.skip("the idle ping is PostgreSQL's pool; SQLite keeps one local connection")
    return settings


async def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_that_died_while_idle_is_replaced(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = create_engine(pg_settings)
    try:
        dead = await _backend_pid(engine)
        url = pg_settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
        admin = await asyncpg.connect(url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", dead)
        finally:
            await admin.close()
        # The pooled connection is dead; the ping on checkout finds out and opens another.
        assert await _backend_pid(engine) != dead
    finally:
        await engine.dispose()


async def test_a_busy_connection_is_not_pinged(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(pg_settings)
    dialect = engine.sync_engine.dialect
    pings: list[object] = []
    real_ping = dialect.do_ping

    def counting_ping(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return bool(real_ping(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counting_ping)
    try:
        first = await _backend_pid(engine)
        assert await _backend_pid(engine) == first  # reused within the second: no ping
        assert pings == []
        monkeypatch.setattr(db_session, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert await _backend_pid(engine) == first  # "idle" now: pinged, alive, kept
        assert len(pings) == 1
    finally:
        await engine.dispose()
