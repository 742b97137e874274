"""Issue 18, point 9: ``signup-sync sources add|edit|enable|disable|remove|check``.

Each command calls the service its endpoint calls; the check reads one page of the fake
Eventbrite over real HTTP (127.0.0.1) and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from signup_sync.cli import app
from signup_sync.db.session import create_engine
from signup_sync.settings import load_settings
from tests.conftest import run_async
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.sync_fakes import FakeConnector, fake_connector
from tests.test_sync_cli import cli

__all__ = ["cli", "fake_connector"]

EB_ENV = "SIGNUP_SYNC_SOURCE_CLI_CHECK_EB"
KEY_ENV = "SIGNUP_SYNC_SOURCE_CLI_EDIT_KEY"


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    async def work() -> list[tuple[Any, ...]]:
        engine = create_engine(load_settings(database_url=database_url))
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    result: list[tuple[Any, ...]] = run_async(work())
    return result


def written(database_url: str) -> tuple[Any, ...]:
    return tuple(
        query(database_url, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608
        for table in ("funnel_sync_logs", "funnel_events", "funnel_leads")
    )


def stderr_of(result: Any) -> str:
    try:
        return str(result.stderr)
    except ValueError:  # an older Click that mixes the streams
        return str(result.output)


def test_add_warns_about_missing_secrets_and_check_names_them_then_passes(
    cli: CliRunner,
    database_url: str,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eb_server[0].use(FakeEventbrite(count=30))
    monkeypatch.setenv("SIGNUP_SYNC_OUTBOUND_ALLOW", "127.0.0.0/8")
    monkeypatch.delenv(EB_ENV, raising=False)
    added = cli.invoke(
        app,
        [
            "sources",
            "add",
            "eventbrite",
            "Rooftop",
            "--set",
            "organization_id=215487369012",
            "--set",
            f"base_url={eb_server[1]}",
            "--set",
            f"token_env={EB_ENV}",
        ],
    )
    assert added.exit_code == 0, added.output
    warning = stderr_of(added)
    assert "cannot sync yet" in warning and f"{EB_ENV} is not set" in warning
    assert "signup-sync sources check 1" in warning

    failing = cli.invoke(app, ["sources", "check", "1"])
    assert failing.exit_code == 1, failing.output
    assert f"Missing: {EB_ENV}" in failing.output
    assert "does not work yet" in failing.output
    assert written(database_url) == (0, 0, 0)

    monkeypatch.setenv(EB_ENV, EB_TOKEN)
    passing = cli.invoke(app, ["sources", "check", "1"])
    assert passing.exit_code == 0, passing.output
    assert "Source #1 works." in passing.output
    assert EB_TOKEN not in passing.output
    as_json = cli.invoke(app, ["sources", "check", "1", "--json"])
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert body["ok"] is True and body["records_on_first_page"] > 0
    assert written(database_url) == (0, 0, 0)
    [(cursor, last_sync_at)] = query(
        database_url, "SELECT cursor, last_sync_at FROM funnel_sources"
    )
    assert cursor in (None, "null") and last_sync_at is None  # SQLite keeps JSON null as text

    monkeypatch.setenv(EB_ENV, "a-wrong-token-value")
    refused = cli.invoke(app, ["sources", "check", "1"])
    assert refused.exit_code == 1
    assert "not authorised (401)" in refused.output
    assert "a-wrong-token-value" not in refused.output


def test_edit_merges_config_and_changes_name_and_schedule(
    cli: CliRunner, database_url: str, fake_connector: type[FakeConnector]
) -> None:
    added = cli.invoke(
        app,
        ["sources", "add", "easyappointments", "Cal", "--set", "page_size=2", "--set", "dataset=x"],
    )
    assert added.exit_code == 0, added.output
    assert "cannot sync yet" not in stderr_of(added)

    edited = cli.invoke(
        app,
        [
            "sources",
            "edit",
            "1",
            "--name",
            "Calendar",
            "--schedule",
            "0 4 * * *",
            "--set",
            "page_size=5",
            "--set",
            f"api_key_env={KEY_ENV}",
        ],
    )
    assert edited.exit_code == 0, edited.output
    assert "Source #1 updated." in edited.output
    assert f"{KEY_ENV} is not set" in stderr_of(edited)
    [(name, schedule, config)] = query(
        database_url, "SELECT name, schedule, config FROM funnel_sources"
    )
    config = json.loads(config) if isinstance(config, str) else config
    assert (name, schedule) == ("Calendar", "0 4 * * *")
    assert config == {"page_size": 5, "dataset": "x", "api_key_env": KEY_ENV}

    unset = cli.invoke(
        app, ["sources", "edit", "1", "--unset", "api_key_env", "--schedule", "default"]
    )
    assert unset.exit_code == 0, unset.output
    [(schedule, config)] = query(database_url, "SELECT schedule, config FROM funnel_sources")
    config = json.loads(config) if isinstance(config, str) else config
    assert schedule is None and config == {"page_size": 5, "dataset": "x"}

    assert cli.invoke(app, ["sources", "edit", "1"]).exit_code == 2
    bad = cli.invoke(app, ["sources", "edit", "1", "--set", "page_size=0"])
    assert bad.exit_code == 2 and "config.page_size" in bad.output
    bad = cli.invoke(app, ["sources", "edit", "1", "--schedule", "every day"])
    assert bad.exit_code == 2 and "schedule" in bad.output
    assert cli.invoke(app, ["sources", "edit", "99", "--name", "x"]).exit_code == 2


def test_disable_remove_enable_keep_history(
    cli: CliRunner, database_url: str, fake_connector: type[FakeConnector]
) -> None:
    assert cli.invoke(app, ["sources", "add", "easyappointments", "Cal"]).exit_code == 0
    synced = cli.invoke(app, ["sync", "easyappointments"])
    assert synced.exit_code == 0, synced.output
    before = written(database_url)
    assert before[1] > 0

    removed = cli.invoke(app, ["sources", "remove", "1"])
    assert removed.exit_code == 0, removed.output
    assert "history are kept" in removed.output.replace("\n", " ")
    assert query(database_url, "SELECT is_active FROM funnel_sources") == [(False,)]
    assert written(database_url) == before
    nothing = cli.invoke(app, ["sync", "easyappointments"])
    assert "No active easyappointments source" in nothing.output

    enabled = cli.invoke(app, ["sources", "enable", "1"])
    assert enabled.exit_code == 0, enabled.output
    assert "is now active" in enabled.output
    assert query(database_url, "SELECT is_active FROM funnel_sources") == [(True,)]

    assert cli.invoke(app, ["sources", "disable", "1"]).exit_code == 0
    assert query(database_url, "SELECT is_active FROM funnel_sources") == [(False,)]
    assert cli.invoke(app, ["sources", "enable", "1"]).exit_code == 0
    assert query(database_url, "SELECT is_active FROM funnel_sources") == [(True,)]
    for command in ("enable", "remove", "check"):
        assert cli.invoke(app, ["sources", command, "99"]).exit_code == 2


def test_check_of_a_poshvip_upload_source_passes_and_says_why(cli: CliRunner) -> None:
    assert cli.invoke(app, ["sources", "add", "poshvip", "Rooftop"]).exit_code == 0
    checked = cli.invoke(app, ["sources", "check", "1", "--json"])
    assert checked.exit_code == 0, checked.output
    body = json.loads(checked.stdout)
    read = {c["name"]: c for c in body["checks"]}["read_one_page"]
    assert read["skipped"] and "uploaded export" in read["detail"]
