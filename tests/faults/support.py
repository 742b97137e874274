"""Tools for fault-injection tests: a cuttable TCP proxy, a silent server, DB snapshots.

Everything listens on 127.0.0.1 only, runs on its own event loop in a daemon thread (so
a subprocess under test and the test itself can both reach it) and stops on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent, FunnelSource, FunnelSyncLog, Lead
from tests.fakes.eventbrite import ORGANIZATION_ID

TOKEN_ENV = "SIGNUP_SYNC_SOURCE_FAULTS_EVENTBRITE_TOKEN"


class LoopThread:
    """An asyncio loop in a daemon thread; ``call(coro)`` runs a coroutine on it and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` makes the target unreachable.

    Modes of a cut: ``"refuse"`` resets every open connection and every new one (the
    server went away); ``"blackhole"`` keeps connections open but forwards nothing and
    accepts new ones that never get an answer (a network partition).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: str | None = None  # None: forwarding
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: list[asyncio.StreamWriter] = []
        self.connections = 0
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in [*self._writers, *self._held]:
            _abort(writer)

    async def cut(self, mode: str) -> None:
        assert mode in ("refuse", "blackhole"), mode
        self.mode = mode
        self._flowing.clear()
        if mode == "refuse":
            for writer in list(self._writers):
                _abort(writer)

    async def restore(self) -> None:
        self.mode = None
        self._flowing.set()
        # Connections parked during a partition are dead to their clients anyway.
        for writer in self._held:
            _abort(writer)
        self._held.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            _abort(writer)
            return
        if self.mode == "blackhole":
            self._held.append(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                _abort(w)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # a partition holds the bytes: nothing passes
                if self.mode == "refuse":
                    break
                writer.write(data)
                await writer.drain()
        _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[tuple[TcpProxy, LoopThread]]:
    loop = LoopThread("tcp-proxy")
    proxy = TcpProxy(target_host, target_port)
    try:
        loop.call(proxy.start())
        yield proxy, loop
    finally:
        with contextlib.suppress(Exception):
            loop.call(proxy.stop())
        loop.stop()


@contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts connections and reads requests but never answers; yields a URL."""
    loop = LoopThread("silent-server")
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass
        _abort(writer)

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    server: asyncio.Server = loop.call(start())
    port = server.sockets[0].getsockname()[1]

    async def stop() -> None:
        server.close()
        for writer in held:
            _abort(writer)

    try:
        yield f"http://127.0.0.1:{port}/v3/"
    finally:
        with contextlib.suppress(Exception):
            loop.call(stop())
        loop.stop()


def wait_for(check: Callable[[], bool], *, within: float, what: str, step: float = 0.05) -> None:
    """Poll ``check`` until true; fail after ``within`` seconds (a hang guard, not a timing)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        time.sleep(step)


# --- the database ------------------------------------------------------------------------------


def eventbrite_config(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url, "organization_id": ORGANIZATION_ID, "token_env": TOKEN_ENV}


async def add_eventbrite_source(
    factory: async_sessionmaker[AsyncSession], base_url: str, name: str = "Rooftop"
) -> int:
    async with factory() as session:
        source = FunnelSource(
            source_type="eventbrite",
            name=name,
            is_active=True,
            schedule="off",
            config=eventbrite_config(base_url),
        )
        session.add(source)
        await session.commit()
        return int(source.id)


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """What a sync leaves behind, without ids and wall-clock stamps (which differ per run)."""
    async with engine.connect() as conn:
        leads = (
            await conn.execute(
                select(
                    Lead.email,
                    Lead.first_name,
                    Lead.last_name,
                    Lead.stage,
                    Lead.first_seen_at,
                    Lead.last_seen_at,
                    Lead.first_touch_source_type,
                    Lead.first_touch_utm_source,
                    Lead.stage_2_at,
                    Lead.stage_3_at,
                ).order_by(Lead.email)
            )
        ).all()
        events = (
            await conn.execute(
                select(
                    FunnelEvent.external_id,
                    FunnelEvent.event_type,
                    FunnelEvent.status,
                    FunnelEvent.occurred_at,
                    FunnelEvent.utm_source,
                    FunnelEvent.event_metadata,
                    Lead.email,
                )
                .join(Lead, Lead.id == FunnelEvent.lead_id)
                .order_by(FunnelEvent.external_id, FunnelEvent.event_type)
            )
        ).all()
        source = (
            await conn.execute(
                select(
                    FunnelSource.total_leads_captured,
                    FunnelSource.cursor,
                    FunnelSource.last_sync_status,
                    FunnelSource.lease_owner,
                )
            )
        ).all()
    return {
        "leads": [tuple(r) for r in leads],
        "events": [tuple(r) for r in events],
        "sources": [tuple(r) for r in source],
    }


async def count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def sync_logs(engine: AsyncEngine) -> list[FunnelSyncLog]:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as session:
        return list(
            (await session.execute(select(FunnelSyncLog).order_by(FunnelSyncLog.id))).scalars()
        )
