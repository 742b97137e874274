"""Settings from the environment: URL normalisation and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from signup_sync.settings import SettingsError, load_settings, normalise_database_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "postgresql://user:pw@db.railway.internal:5432/railway",
            "postgresql+asyncpg://user:pw@db.railway.internal:5432/railway",
        ),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+asyncpg://u:p@h/db?ssl=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("sqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
    ],
)
def test_database_urls_as_platforms_hand_them_out(raw: str, expected: str) -> None:
    assert normalise_database_url(raw) == expected


def test_unset_database_is_a_sqlite_file_in_the_working_directory(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGARDE_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'signup_sync.db'}"
    assert settings.is_sqlite and settings.should_auto_migrate
    assert settings.port == 8001


def test_environment_is_read(monkeypatch) -> None:
    monkeypatch.setenv("ENGARDE_DATABASE_URL", "postgresql://u:p@h:5432/d")
    monkeypatch.setenv("SIGNUP_SYNC_SERVICE_TOKEN", "token-one-123, token-two-456")
    monkeypatch.setenv("CORS_ORIGINS", "https://app.engarde.media,https://admin.engarde.media")
    monkeypatch.setenv("PORT", "9000")
    settings = load_settings()
    assert settings.service_tokens == ["token-one-123", "token-two-456"]
    assert settings.cors_origins == ["https://app.engarde.media", "https://admin.engarde.media"]
    assert settings.port == 9000
    assert (
        settings.should_auto_migrate
    )  # migrates under the advisory lock (AUTO_MIGRATE=false: not)


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("PORT", "eighty", "PORT:"),
        ("PORT", "70000", "PORT:"),
        (
            "ENGARDE_DATABASE_URL",
            "mysql://root@localhost/x",
            "ENGARDE_DATABASE_URL: unsupported scheme",
        ),
        ("SIGNUP_SYNC_SERVICE_TOKEN", "short", "SIGNUP_SYNC_SERVICE_TOKEN: each token"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL:"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, variable: str, value: str, needle: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(needle)
    assert "\n" not in message


def test_a_bad_value_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {"PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "signup_sync.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "PORT" in lines[0]


def test_secrets_in_the_url_are_not_echoed(monkeypatch) -> None:
    monkeypatch.setenv("ENGARDE_DATABASE_URL", "mysql://root:hunter2@localhost/x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)
