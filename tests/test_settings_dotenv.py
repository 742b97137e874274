"""Settings from a `.env` file: process environment over `.env` over defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from signup_sync.settings import ENV_FILE_VARIABLE, SettingsError, load_settings


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory as a user has it: the default `.env` lookup, no stray variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_FILE_VARIABLE, raising=False)
    for name in ("PORT", "LOG_LEVEL", "SIGNUP_SYNC_SERVICE_TOKEN", "CORS_ORIGINS", "HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_test_suite_reads_no_dotenv() -> None:
    """A stray `.env` in the repository must not change what the tests run with."""
    assert os.environ.get(ENV_FILE_VARIABLE) == ""


def test_dotenv_in_the_working_directory_is_read(in_project: Path) -> None:
    (in_project / ".env").write_text(
        "# local settings\n"
        "PORT=9100\n"
        "SIGNUP_SYNC_SERVICE_TOKEN=from-dotenv-token-1\n"
        'CORS_ORIGINS="https://a.example, https://b.example"\n'
        "SOMETHING_ELSE=ignored\n"
    )
    settings = load_settings()
    assert settings.port == 9100
    assert settings.service_tokens == ["from-dotenv-token-1"]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.log_level == "info"  # in neither: the default


def test_process_environment_wins_over_dotenv(
    in_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_project / ".env").write_text("PORT=9100\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("PORT", "9200")
    settings = load_settings()
    assert settings.port == 9200
    assert settings.log_level == "debug"


def test_explicit_overrides_win_over_both(
    in_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_project / ".env").write_text("PORT=9100\n")
    monkeypatch.setenv("PORT", "9200")
    assert load_settings(port=9300).port == 9300


def test_a_bad_dotenv_value_names_the_variable(in_project: Path) -> None:
    (in_project / ".env").write_text("PORT=eighty\n")
    with pytest.raises(SettingsError, match=r"^PORT: "):
        load_settings()


def test_another_file_or_none(in_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_project / ".env").write_text("PORT=9100\n")
    (in_project / "prod.env").write_text("PORT=9400\n")
    monkeypatch.setenv(ENV_FILE_VARIABLE, "prod.env")
    assert load_settings().port == 9400
    monkeypatch.setenv(ENV_FILE_VARIABLE, "")
    assert load_settings().port == 8001


def test_the_command_line_reads_dotenv(tmp_path: Path) -> None:
    """End to end: `db upgrade` migrates the database that `.env` names."""
    (tmp_path / ".env").write_text(
        f"ENGARDE_DATABASE_URL=sqlite:///{tmp_path / 'from-dotenv.db'}\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k != ENV_FILE_VARIABLE and not k.startswith(("SIGNUP_SYNC_", "ENGARDE_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "signup_sync.cli", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-dotenv.db").exists()
    assert not (tmp_path / "signup_sync.db").exists()
