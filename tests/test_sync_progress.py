"""Sync progress knows a total where the API reports one (issue 18, point 11).

Eventbrite's ``pagination.object_count`` and Zoom's ``total_records`` reach ``Page.total``,
the engine's progress callback and the CLI's bar (with an ETA); a source with no total
(EasyAppointments) keeps a spinner. The result table adds up: Read = New + Updated +
Unchanged + Skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from signup_sync.cli import app
from signup_sync.db.session import create_engine, create_session_factory
from signup_sync.settings import load_settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import Factory, SyncProgress, run_sync
from tests.conftest import run_async, truncate_all
from tests.fakes.eventbrite import EVENTS, TOKEN, FakeEventbrite, Switch
from tests.fakes.zoom import serve as serve_zoom
from tests.fakes.zoom import standard_zoom
from tests.helpers import LOCAL_SETTINGS
from tests.sources import test_eventbrite as eb
from tests.sources import test_zoom as zm
from tests.sync_fakes import FakeConnector, add_source, fake_connector

__all__ = ["fake_connector"]

ORG = eb.ORG
EB_ENV = "SIGNUP_SYNC_SOURCE_PROGRESS_EB_TOKEN"


@pytest.fixture
def fake(eb_server: tuple[Switch, str]) -> FakeEventbrite:
    return eb_server[0].use(FakeEventbrite(count=120))


async def test_eventbrite_pages_carry_the_object_count(
    fake: FakeEventbrite, eb_server: tuple[Switch, str]
) -> None:
    whole = await eb.run(eb.make_ctx(eb_server[1]))
    assert len(whole.pages) == 3 and [p.total for p in whole.pages] == [120, 120, 120]
    # Two listings: the total grows as each one starts (what is known so far).
    (first, _), (second, _) = EVENTS
    per_event = await eb.run(eb.make_ctx(eb_server[1], event_ids=[first, second]))
    in_first = sum(1 for i in range(120) if fake.event_of(i)[0] == first)
    totals = [p.total for p in per_event.pages]
    assert totals[0] == in_first and totals[-1] == 120
    assert totals == sorted(totals)
    assert sum(len(p.records) for p in per_event.pages) == 120


class Recording(httpx.AsyncHTTPTransport):
    """Notes total_records of every first page of a registrant or participant listing."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        path = request.url.path
        first = "next_page_token" not in request.url.params
        if first and path.endswith(("/registrants", "/participants")):
            body = orjson.loads(await response.aread())
            self.totals.append(int(body["total_records"]))
        return response


@pytest.fixture
def zoom() -> Iterator[zm.Fake]:
    fake = standard_zoom()
    with serve_zoom(fake.app()) as url:
        yield zm.Fake(fake, url)


async def test_zoom_pages_carry_the_sum_of_total_records(zoom: zm.Fake) -> None:
    recording = Recording()
    ctx = zm.make_ctx(zoom)
    ctx.transport = recording
    pages = await zm.read_pages(ctx)
    assert recording.totals and sum(recording.totals) > 0
    totals = [p.total for p in pages if p.total is not None]
    assert totals == sorted(totals)  # grows listing by listing
    assert pages[-1].total == sum(recording.totals)


async def test_the_progress_callback_receives_the_total(
    factory: Factory,
    fake: FakeEventbrite,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(EB_ENV, TOKEN)
    config = {"base_url": eb_server[1], "organization_id": ORG, "token_env": EB_ENV}
    source_id = await add_source(factory, "Tickets", source_type="eventbrite", config=config)
    seen: list[SyncProgress] = []
    result = await run_sync(
        factory,
        source_id,
        retry=RetryPolicy(wait_scale=0),
        settings=LOCAL_SETTINGS,
        progress=seen.append,
    )
    assert result.status == "success"
    assert seen and all(p.total == 120 for p in seen)
    assert seen[-1].records == 120


@pytest.fixture
def factory(engine: AsyncEngine) -> Factory:
    return create_session_factory(engine)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    async def empty() -> None:
        engine = create_engine(load_settings(database_url=database_url))
        try:
            await truncate_all(engine)
        finally:
            await engine.dispose()

    run_async(empty())
    monkeypatch.setenv("ENGARDE_DATABASE_URL", database_url)
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("SIGNUP_SYNC_OUTBOUND_ALLOW", "127.0.0.0/8")
    monkeypatch.setenv(EB_ENV, TOKEN)
    handlers = logging.getLogger().handlers[:]
    yield CliRunner()
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


def result_row(output: str, source: str) -> dict[str, int]:
    """The result table's numbers for one source, by column name."""
    lines = output.splitlines()
    header = next(line for line in lines if "Unchanged" in line and "Read" in line)
    names = [c.strip() for c in header.split("┃") if c.strip()]
    row = next(line for line in lines if source in line and "│" in line)
    cells = dict(zip(names, [c.strip() for c in row.split("│") if c.strip()], strict=False))
    return {k: int(cells[k]) for k in ("Read", "New", "Updated", "Unchanged", "Skipped")}


def adds_up(row: dict[str, int]) -> bool:
    return row["Read"] == row["New"] + row["Updated"] + row["Unchanged"] + row["Skipped"]


def test_the_cli_shows_a_bar_with_a_total_for_eventbrite(
    cli: CliRunner, fake: FakeEventbrite, eb_server: tuple[Switch, str]
) -> None:
    added = cli.invoke(
        app,
        [
            "sources", "add", "eventbrite", "Tickets",
            "--set", f"base_url={eb_server[1]}",
            "--set", f"organization_id={ORG}",
            "--set", f"token_env={EB_ENV}",
        ],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    done = cli.invoke(app, ["sync", "eventbrite"])
    assert done.exit_code == 0, done.output
    bar = next(line for line in done.output.splitlines() if "120/120 records" in line)
    assert "━" in bar and "Tickets" in bar and "ETA" in bar
    row = result_row(done.output, "Tickets (#1)")
    assert row["Read"] == 120 and row["Skipped"] == 4  # the fake's four rows without an email
    assert adds_up(row)

    again = cli.invoke(app, ["sync", "eventbrite", "--force"])
    assert again.exit_code == 0, again.output
    row = result_row(again.output, "Tickets (#1)")
    assert (row["Read"], row["New"], row["Unchanged"]) == (120, 0, 116)
    assert adds_up(row)
    assert "Read = New + Updated + Unchanged + Skipped" in again.output


def test_the_cli_shows_a_spinner_without_a_total(
    cli: CliRunner, fake_connector: type[FakeConnector]
) -> None:
    added = cli.invoke(app, ["sources", "add", "easyappointments", "Cal", "--set", "page_size=3"])
    assert added.exit_code == 0, added.output
    done = cli.invoke(app, ["sync", "easyappointments", "--force"])
    assert done.exit_code == 0, done.output
    line = next(line for line in done.output.splitlines() if "Cal 3 pages" in line)
    assert re.search(r"Cal 3 pages 7 records \d+ records/s", line)
    assert "━" not in line and "ETA" not in line and "/7" not in line
    assert adds_up(result_row(done.output, "Cal (#1)"))
