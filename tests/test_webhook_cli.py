"""``signup-sync worker --once``: the same loop as the service's worker, as its own process."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

from signup_sync.cli import app
from signup_sync.db.session import create_engine, create_session_factory, unit_of_work
from signup_sync.settings import load_settings
from signup_sync.webhooks.receive import Incoming, receive
from tests.conftest import run_async, truncate_all
from tests.sync_fakes import add_source
from tests.webhook_support import ENV, Z3_BODY, Z3_TS, deliveries, events, sign, zoom_config


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("ENGARDE_DATABASE_URL", database_url)
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    handlers = logging.getLogger().handlers[:]
    yield CliRunner()
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


def test_worker_once_processes_the_inbox(cli: CliRunner, database_url: str) -> None:
    async def store() -> None:
        engine = create_engine(load_settings(database_url=database_url))
        try:
            await truncate_all(engine)
            factory = create_session_factory(engine)
            await add_source(factory, "z", source_type="zoom", config=zoom_config())
            incoming = Incoming(
                source_type="zoom",
                source_id=None,
                raw_body=Z3_BODY.encode(),
                headers=sign(Z3_BODY.encode(), Z3_TS),
                url_secret=None,
                now=Z3_TS + 1,
            )
            async with unit_of_work(factory) as session:
                await receive(session, incoming)
        finally:
            await engine.dispose()

    async def state() -> tuple[list[str], int]:
        engine = create_engine(load_settings(database_url=database_url))
        try:
            factory = create_session_factory(engine)
            found = [d.status for d in await deliveries(factory)]
            return found, len(await events(factory))
        finally:
            await engine.dispose()

    run_async(store())
    assert run_async(state()) == (["pending"], 0)
    result = cli.invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 webhook deliveries processed: 1 done" in result.output
    assert run_async(state()) == (["done"], 1)
    again = cli.invoke(app, ["worker", "--once"])
    assert "0 webhook deliveries processed: none" in again.output
