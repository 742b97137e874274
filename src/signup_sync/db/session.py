"""Engine and session factories, built from settings by the app's lifespan or a CLI command."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from signup_sync.metrics import track_pool
from signup_sync.settings import Settings

T = TypeVar("T")

# What each session of an engine should know from the settings that built the engine
# (e.g. PRIVACY_HASH_KEY for ingestion), handed over as ``session.info``.
_SESSION_INFO: WeakKeyDictionary[Engine, dict[str, Any]] = WeakKeyDictionary()
PRIVACY_KEY_INFO = "signup_sync.privacy_hash_key"


def _session_info(settings: Settings) -> dict[str, Any]:
    key = settings.privacy_hash_key
    return {PRIVACY_KEY_INFO: key.get_secret_value().encode()} if key is not None else {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; busy_timeout makes a second process wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    # Deleted rows are overwritten with zeros, not left in free space: an erased person
    # must not stay readable in the file (docs/security.md "What erasure removes").
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    """One engine per process; SQLite gets one connection so writes never contend in-process."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=max(settings.db_timeout_seconds * 6, 30),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = _postgres_engine(settings)
    _SESSION_INFO[engine.sync_engine] = _session_info(settings)
    track_pool(engine)
    return engine


def _postgres_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        # Up to 2 x DB_POOL_SIZE connections, all kept once opened: overflow connections are
        # closed on check-in, and under load that meant a new PostgreSQL backend (several
        # ms of CPU) every few requests.
        pool_size=2 * settings.db_pool_size,
        max_overflow=0,
        # Waiting for a pooled connection is waiting for other requests' statements (each
        # bounded by command_timeout below): a burst of clients queues instead of getting
        # 503s, while a dead database still fails fast at connect (DB_TIMEOUT_SECONDS).
        pool_timeout=settings.db_timeout_seconds * 6,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_timeout_seconds,
            # Bounds every statement, the pool's pre-ping included: a database that stops
            # answering on an open connection (a partition, a hung proxy) costs a request
            # at most this long, then a 503. 30 s by default; DB_TIMEOUT_SECONDS scales it.
            "command_timeout": settings.db_timeout_seconds * 6,
            "server_settings": {"application_name": "signup-sync"},
        },
    )
    _ping_when_idle(engine)
    return engine


# A pooled connection that has sat idle this long is pinged before use (pre-ping). A busy
# service reuses connections within milliseconds and skips the ping: on asyncpg it costs
# three round trips (BEGIN, a query, ROLLBACK), as much as the work of a small request.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    dialect = engine.sync_engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another one.
            raise DisconnectionError(f"stale pooled connection: {type(exc).__name__}") from exc
        if not alive:
            raise DisconnectionError("stale pooled connection")

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    info = dict(_SESSION_INFO.get(engine.sync_engine, {}))
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits once at the end, or rolls back on any error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def run_in_transaction(
    factory: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 3,
) -> T:
    """Run ``work`` in one transaction and commit; re-run it if a concurrent writer won a race.

    A unique-key collision means another transaction stored the same event or conversion
    first; re-running sees it and answers "duplicate" instead of failing.
    """
    for attempt in range(1, attempts + 1):
        try:
            async with unit_of_work(factory) as session:
                return await work(session)
        except IntegrityError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")
