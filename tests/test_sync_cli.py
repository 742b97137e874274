"""``signup-sync sources list|add|disable``, ``sync`` and ``scheduler --once``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from signup_sync.cli import app
from signup_sync.db.session import create_engine
from signup_sync.settings import load_settings
from tests.conftest import run_async, truncate_all
from tests.sync_fakes import FakeConnector, fake_connector

__all__ = ["fake_connector"]


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
    handlers = logging.getLogger().handlers[:]
    yield CliRunner()
    # The commands log to the runner's (now closed) streams: point logging back.
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


def test_sources_add_list_disable_and_sync_from_the_command_line(
    cli: CliRunner, fake_connector: type[FakeConnector]
) -> None:
    added = cli.invoke(
        app,
        [
            "sources",
            "add",
            "easyappointments",
            "Main calendar",
            "--set",
            "page_size=2",
            "--set",
            "api_key_env=SIGNUP_SYNC_SOURCE_CLI_TEST_KEY",
        ],
    )
    assert added.exit_code == 0, added.output
    assert "Added source #" in added.output
    listed = cli.invoke(app, ["sources", "list"])
    assert listed.exit_code == 0 and "Main calendar" in listed.output
    assert "SIGNUP_SYNC_SOURCE_CLI_TEST_KEY (missing)" in listed.output

    failed = cli.invoke(app, ["sync", "easyappointments"])
    assert failed.exit_code == 1
    assert "SIGNUP_SYNC_SOURCE_CLI_TEST_KEY is not set" in failed.output

    cli.invoke(app, ["sources", "disable", "1"])
    re_add = cli.invoke(
        app, ["sources", "add", "easyappointments", "Second", "--set", "page_size=2"]
    )
    assert re_add.exit_code == 0, re_add.output
    dry = cli.invoke(app, ["sync", "easyappointments", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing was written." in dry.output
    done = cli.invoke(app, ["sync", "easyappointments", "--since", "2026-01-01"])
    assert done.exit_code == 0, done.output
    assert "Second" in done.output and "success" in done.output
    row = next(line for line in done.output.splitlines() if "Second" in line and "success" in line)
    assert [cell.strip() for cell in row.split("│") if cell.strip()][2:7] == [
        "7", "4", "1", "0", "2",
    ]  # fmt: skip
    assert FakeConnector.contexts[-1].since is not None

    listed = cli.invoke(app, ["sources", "list", "--all"])
    assert "Main calendar" in listed.output and "Second" in listed.output
    assert "Main calendar" not in cli.invoke(app, ["sources", "list"]).output


def test_cli_errors_name_the_field(cli: CliRunner, fake_connector: type[FakeConnector]) -> None:
    bad = cli.invoke(app, ["sources", "add", "easyappointments", "X", "--set", "page_size=0"])
    assert bad.exit_code == 2 and "config.page_size" in bad.output
    secret = cli.invoke(app, ["sources", "add", "zoom", "Z", "--set", "client_secret=abc"])
    assert secret.exit_code == 2 and "config.client_secret" in secret.output
    unknown = cli.invoke(app, ["sync", "myspace"])
    assert unknown.exit_code == 2 and "Unknown source type" in unknown.output
    nothing = cli.invoke(app, ["sync", "easyappointments"])
    assert nothing.exit_code == 0 and "No active easyappointments source" in nothing.output
    assert cli.invoke(app, ["sources", "disable", "99"]).exit_code == 2


def test_scheduler_once_runs_due_syncs(cli: CliRunner, fake_connector: type[FakeConnector]) -> None:
    result = cli.invoke(app, ["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    assert "0 scheduled sync(s) ran" in result.output


def test_sync_shows_progress_and_the_result_table(
    cli: CliRunner, fake_connector: type[FakeConnector]
) -> None:
    added = cli.invoke(app, ["sources", "add", "easyappointments", "Cal", "--set", "page_size=3"])
    assert added.exit_code == 0, added.output
    done = cli.invoke(app, ["sync", "easyappointments", "--force"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    # The live display's last frame (a terminal sees it move page by page).
    progress = next(i for i, line in enumerate(lines) if "Cal 3 pages 7 records" in line)
    assert re.search(r"Cal 3 pages 7 records \d+ records/s", lines[progress])
    table = lines.index("Sync result")
    assert table > progress
    row = next(line for line in lines[table:] if "Cal (#1)" in line)
    assert [c.strip() for c in row.split("│") if c.strip()][1:8] == [
        "success", "7", "4", "1", "0", "2", "1",
    ]  # fmt: skip
    assert lines[-1] == "success: 1 source(s): 1 success"


def test_sync_a_posh_export_file(cli: CliRunner, tmp_path: Path) -> None:
    from tests.sources.test_poshvip import EXPORT, TZ

    added = cli.invoke(app, ["sources", "add", "poshvip", "Rooftop", "--set", f"timezone={TZ}"])
    assert added.exit_code == 0, added.output
    missing = cli.invoke(app, ["sync", "poshvip"])
    assert missing.exit_code == 2 and "--file" in missing.output
    export = tmp_path / "posh.csv"
    export.write_bytes(EXPORT)
    done = cli.invoke(app, ["sync", "poshvip", "--file", str(export)])
    assert done.exit_code == 0, done.output
    assert re.search(r"Rooftop 1 pages 13 records \d+ records/s", done.output)
    row = next(line for line in done.output.splitlines() if "Rooftop (#1)" in line)
    assert [c.strip() for c in row.split("│") if c.strip()][1:7] == [
        "success", "13", "8", "2", "1", "2",
    ]  # fmt: skip


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_sync_since_outside_the_date_range_is_an_error_not_a_traceback(
    cli: CliRunner, fake_connector: type[FakeConnector], when: str
) -> None:
    done = cli.invoke(app, ["sync", "easyappointments", "--since", when])
    assert done.exit_code == 2, done.output
    assert "since" in done.output and "1900-01-01" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
