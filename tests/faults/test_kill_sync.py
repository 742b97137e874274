"""SIGKILL a real process in the middle of an Eventbrite sync, restart, sync again.

The database must end identical to an uninterrupted sync (no duplicate, no gap), the
killed run's log ``failed`` (interrupted) once its lease expired, and the second run must
resume from the last committed page rather than start over. Two processes are killed:
the CLI (``signup-sync sync eventbrite --source-id N``) and the server running a
``POST /sync/eventbrite`` answered 202 (``wait: false``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent, FunnelSource
from signup_sync.db.session import create_session_factory
from signup_sync.db.types import utcnow
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.lease import INTERRUPTED
from signup_sync.sync.runner import run_sync
from tests.conftest import TOKEN as SERVICE_TOKEN
from tests.conftest import truncate_all
from tests.fakes.eventbrite import TOKEN, FakeEventbrite, Switch
from tests.faults.support import TOKEN_ENV, add_eventbrite_source, count, snapshot, sync_logs
from tests.helpers import LOCAL_SETTINGS
from tests.server import run_server

Factory = async_sessionmaker[AsyncSession]
ATTENDEES = 400  # 8 pages of 50
LEASE_TTL = 3  # seconds: the killed run's lease expires this long after its last renewal
PAGE_DELAY = 0.4  # seconds per page while the victim runs, so the kill lands mid-sync
KILL_AFTER_EVENTS = 100  # about two pages committed


def child_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGARDE_", "SIGNUP_SYNC_"))}
    src = str(Path(__file__).resolve().parents[2] / "src")
    env.update(
        {
            "ENGARDE_DATABASE_URL": database_url,
            "AUTO_MIGRATE": "false",
            "SYNC_SCHEDULER_ENABLED": "false",
            "SYNC_LEASE_TTL_SECONDS": str(LEASE_TTL),
            "SOURCE_TIMEOUT_SECONDS": "10",
            "SIGNUP_SYNC_OUTBOUND_ALLOW": "127.0.0.0/8",  # the fake Eventbrite's address
            TOKEN_ENV: TOKEN,
            "PYTHONPATH": os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p),
            "COLUMNS": "200",
        }
    )
    return env


def cli_sync(database_url: str, source_id: int, cwd: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "signup_sync.cli", "sync", "eventbrite"]
    return subprocess.Popen(
        [*command, "--source-id", str(source_id)],
        env=child_env(database_url),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def post_sync(url: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        return await http.post("/sync/eventbrite", json=body)


async def wait_until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Poll an async check; a bounded guard against hangs, not a timing assertion."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(0.05)


async def lease_expired(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        expires = (await conn.execute(select(FunnelSource.lease_expires_at))).scalar_one()
    return expires is not None and expires < utcnow()


@pytest.mark.slow  # see README, Tests
@pytest.mark.parametrize("victim", ["cli", "server"])
async def test_sigkill_mid_sync_then_restart_ends_identical_to_an_uninterrupted_sync(
    eb_server: tuple[Switch, str],
    engine: AsyncEngine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    victim: str,
) -> None:
    switch, base_url = eb_server
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    factory: Factory = create_session_factory(engine)

    # The reference: the same source synced in one go.
    fake = switch.use(FakeEventbrite(count=ATTENDEES))
    source_id = await add_eventbrite_source(factory, base_url)
    done = await run_sync(
        factory, source_id, retry=RetryPolicy(wait_scale=0), settings=LOCAL_SETTINGS
    )
    assert done.status == "success" and done.pages == ATTENDEES // fake.page_size
    expected = await snapshot(engine)
    await truncate_all(engine)

    fake = switch.use(FakeEventbrite(count=ATTENDEES, page_delay_seconds=PAGE_DELAY))
    source_id = await add_eventbrite_source(factory, base_url)
    env = child_env(database_url)

    async def mid_sync() -> bool:
        return await count(engine, FunnelEvent) >= KILL_AFTER_EVENTS

    if victim == "cli":
        process = cli_sync(database_url, source_id, tmp_path)
        await wait_until(mid_sync, within=60, what="the CLI sync committed two pages")
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    else:
        with run_server(database_url, tmp_path, extra_env=env) as server:
            r = await post_sync(server.url, {"source_id": source_id, "wait": False})
            assert r.status_code == 202, r.text
            await wait_until(mid_sync, within=60, what="the server's sync committed two pages")
            server.process.send_signal(signal.SIGKILL)
            assert server.process.wait(timeout=10) == -signal.SIGKILL

    stored = await count(engine, FunnelEvent)
    assert 0 < stored < len(expected["events"]), "the kill must land mid-sync"
    [killed] = await sync_logs(engine)
    assert killed.status == "running"  # nobody could close it: the process is gone

    # The lease outlives the process for up to its TTL; then the next run takes over.
    await wait_until(lambda: lease_expired(engine), within=LEASE_TTL + 30, what="lease expiry")
    fake.page_delay_seconds = 0
    fake.requests.clear()
    if victim == "cli":
        again = cli_sync(database_url, source_id, tmp_path)
        output = again.communicate(timeout=120)[0].decode(errors="replace")
        assert again.returncode == 0, output
    else:
        with run_server(database_url, tmp_path, extra_env=env) as server:
            r = await post_sync(server.url, {"source_id": source_id})
            assert r.status_code == 200 and r.json()["status"] == "success", r.text

    # Resumed where the killed run's last committed page left off, not from the start.
    _, first_params = fake.requests[0]
    assert "continuation" in first_params
    assert await snapshot(engine) == expected
    killed, resumed = await sync_logs(engine)
    assert killed.status == "failed"
    assert killed.error_messages[-1] == INTERRUPTED and killed.completed_at is not None
    assert resumed.status == "success"
    assert resumed.leads_processed == ATTENDEES - killed.leads_processed
