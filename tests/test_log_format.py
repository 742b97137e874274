"""LOG_FORMAT: readable console lines on a terminal, JSON otherwise; Alembic's chatter at debug."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from signup_sync.db import migrate
from signup_sync.db.session import create_engine
from signup_sync.logs import configure_logging, get_logger
from signup_sync.settings import SettingsError, load_settings

_SCRIPT = """
from signup_sync.logs import configure_logging, get_logger
from signup_sync.settings import load_settings
settings = load_settings()
configure_logging(settings.log_level, settings.log_format)
get_logger("demo").info("sync_finished", email="ana@example.com", records=12)
"""


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def _run_on_a_terminal(**env: str) -> str:
    """Run the script with its stderr on a pseudo-terminal; return what the terminal showed."""
    primary, secondary = pty.openpty()
    child_env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    child_env.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=child_env,
    )
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_json_lines_when_stderr_is_not_a_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    capfd.readouterr()
    get_logger("demo").info("sync_finished", email="ana@example.com", records=12)
    line = json.loads(_last_line(capfd.readouterr().err))
    assert (line["event"], line["records"], line["email"]) == (
        "sync_finished",
        12,
        "a***@example.com",
    )


def test_console_lines_when_asked(capfd: pytest.CaptureFixture[str]) -> None:
    try:
        configure_logging("info", "console")
        capfd.readouterr()
        get_logger("demo").info("sync_finished", email="ana@example.com", records=12)
        line = _last_line(capfd.readouterr().err)
    finally:
        configure_logging("info")
    assert not line.startswith("{")
    assert "[info     ] sync_finished" in line
    assert "records=12" in line and "email=a***@example.com" in line
    assert "\x1b[" not in line  # no colour codes when the stream is not a terminal


def test_a_terminal_gets_console_lines_by_default() -> None:
    shown = _run_on_a_terminal()
    line = _last_line(shown)
    assert "sync_finished" in line and not line.lstrip().startswith("{")
    assert "a***@example.com" in line and "ana@example.com" not in shown


def test_log_format_json_on_a_terminal() -> None:
    line = json.loads(_last_line(_run_on_a_terminal(LOG_FORMAT="json")))
    assert line["event"] == "sync_finished"


def test_a_bad_log_format_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match=r"^LOG_FORMAT: must be console or json$"):
        load_settings()
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert load_settings().log_format == "json"


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_alembic_start_up_chatter_is_below_info(
    level: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(load_settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}"))
    try:
        configure_logging(level)
        capfd.readouterr()
        await migrate.upgrade(engine)
        lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    finally:
        configure_logging("info")
        await engine.dispose()
    alembic = [x for x in lines if x.get("logger") == "alembic.runtime.migration"]
    # The upgrades themselves stay at info: the search below is not vacuous.
    assert any(x["event"].startswith("Running upgrade") and x["level"] == "info" for x in alembic)
    chatter = [x for x in alembic if x["event"].startswith(("Context impl", "Will assume"))]
    if level == "info":
        assert chatter == []
    else:
        assert chatter and {x["level"] for x in chatter} == {"debug"}
