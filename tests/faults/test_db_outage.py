"""PostgreSQL becomes unreachable while requests arrive, then comes back.

The server (a real ``signup-sync serve`` process) reaches PostgreSQL through a TCP proxy
on 127.0.0.1 that the test cuts, either as a dead server (connections reset, new ones
refused) or as a network partition (bytes go nowhere, nothing is answered). The shared
PostgreSQL server itself is never touched. While cut: every request ends, 503 within a
bounded time, and ``/health`` says the database is unreachable. After the cut: the same
process serves 2xx again. At the end, every event answered 2xx is in the database.

SQLite has no network hop to lose: the database is a file opened in-process, so
"unreachable" does not arise; its failures (disk full, file locked past busy_timeout) are
OperationalErrors that take the same 503 path, tested in test_health.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import Lead
from tests.conftest import TOKEN
from tests.faults.support import tcp_proxy
from tests.server import run_server

WORKERS = 8
# A request must end within this long however the database fails (hang guard).
REQUEST_BOUND = 20.0
SERVER_ENV = {
    "DB_TIMEOUT_SECONDS": "1",
    "HEALTH_TIMEOUT_SECONDS": "1",
    "DB_POOL_SIZE": "4",
    "LOG_LEVEL": "warning",
}


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@dataclass
class Load:
    """WORKERS clients posting events with unique emails until told to stop."""

    url: str
    phase: str = "before"
    acked: set[str] = field(default_factory=set)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    slowest: dict[str, float] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def seen(self, phase: str, status: int) -> int:
        return self.statuses[(phase, status)]

    async def until(self, check: Callable[[], bool], *, within: float, what: str) -> None:
        """Wait for ``check``; a failed worker or ``within`` seconds (a hang guard) end it."""
        deadline = time.monotonic() + within
        while not check():
            if self.failure:
                raise AssertionError(self.failure)
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within:.0f} s: {what}; {self.statuses}")
            await asyncio.sleep(0.05)

    async def worker(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        # One connection per worker, as a keep-alive client would have.
        async with httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=REQUEST_BOUND
        ) as http:
            while not self.stop.is_set():
                email = f"outage-{next(self._ids)}@example.com"
                body = {"email": email, "source_type": "manual", "event_type": "lead_captured"}
                phase, started = self.phase, time.monotonic()
                try:
                    r = await http.post("/funnel/event", json=body)
                except httpx.TimeoutException:
                    self.failure = f"{phase}: a request hung past {REQUEST_BOUND} s"
                    raise AssertionError(self.failure) from None
                elapsed = time.monotonic() - started
                self.slowest[phase] = max(self.slowest.get(phase, 0.0), elapsed)
                self.statuses[(phase, r.status_code)] += 1
                if r.status_code in (200, 201):
                    self.acked.add(email)
                elif r.status_code == 503:
                    assert r.json()["error"] == "database_unavailable"
                    assert r.headers["retry-after"]
                    await asyncio.sleep(0.05)  # a polite client backs off a little
                else:
                    self.failure = f"{phase}: unexpected {r.status_code}: {r.text}"
                    raise AssertionError(self.failure)


async def health(url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_BOUND) as http:
        return await http.get("/health")


@pytest.mark.slow  # see README, Tests
@pytest.mark.postgres_only
@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_requests_get_503_while_postgres_is_cut_and_the_service_recovers(
    database_url: str, backend: str, engine: AsyncEngine, tmp_path: Path, mode: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite is a local file: no connection to cut (see the module docstring)")
    target = urlsplit(database_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as (proxy, loop):
        proxied = through(database_url, proxy.port)
        with run_server(proxied, tmp_path, extra_env=SERVER_ENV) as server:
            load = Load(server.url)
            workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
            try:
                await load.until(lambda: load.seen("before", 201) >= 50, within=60, what="warm-up")

                loop.call(proxy.cut(mode))
                load.phase = "cut"
                await load.until(
                    lambda: load.seen("cut", 503) >= 3 * WORKERS, within=120, what="503s"
                )
                down = await health(server.url)
                assert down.status_code == 503
                assert down.json()["database"]["status"] == "unavailable"
                assert down.json()["database"]["error"].startswith(
                    ("cannot reach the database", "no answer within")
                )

                loop.call(proxy.restore())
                await load.until(
                    lambda: _healthy(server.url), within=60, what="health after restore"
                )
                load.phase = "after"
                await load.until(lambda: load.seen("after", 201) >= 50, within=60, what="recovery")
            finally:
                load.stop.set()
                results = await asyncio.gather(*workers, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            assert server.process.poll() is None  # recovered without a restart

    assert "Traceback" not in server.logs()
    async with engine.connect() as conn:
        stored = set((await conn.execute(select(Lead.email))).scalars())
    missing = load.acked - stored
    assert not missing, f"{len(missing)} events answered 2xx are not in the database"
    assert all(load.slowest[p] < REQUEST_BOUND for p in load.slowest)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
