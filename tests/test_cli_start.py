"""Starting the service: `--version`, a port already in use, and uvicorn's own bind failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from signup_sync import __version__, cli

CLI = [sys.executable, "-m", "signup_sync.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENGARDE_", "SIGNUP_SYNC_", "PORT", "HOST"))
    }
    env.update(extra)
    return env


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port with a live listener on it (what another server looks like)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_version_prints_the_package_version() -> None:
    result = subprocess.run(
        [*CLI, "--version"], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"signup-sync {__version__}\n"


def test_serve_on_a_port_in_use_exits_at_once_with_one_line(
    tmp_path: Path, taken_port: int
) -> None:
    result = subprocess.run(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(taken_port)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"Port {taken_port} on 127.0.0.1 is already in use: stop the other server "
        "or choose another with --port or PORT."
    ]
    # Nothing started: no banner, no token, no database created.
    assert not (tmp_path / "signup_sync.db").exists()


def test_serve_turns_uvicorns_own_bind_failure_into_the_same_line(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port can be taken between the check and uvicorn's bind: same answer, exit 1."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNUP_SYNC_SERVICE_TOKEN", "race-token-0001")
    monkeypatch.setenv("SYNC_SCHEDULER_ENABLED", "false")
    monkeypatch.setenv("WEBHOOK_WORKER_ENABLED", "false")
    monkeypatch.delenv("ENGARDE_DATABASE_URL", raising=False)
    calls: list[int] = []
    real_check = cli.port_in_use

    def free_at_the_check_only(host: str, port: int) -> bool:
        calls.append(port)
        return len(calls) > 1 and real_check(host, port)

    monkeypatch.setattr(cli, "port_in_use", free_at_the_check_only)
    result = CliRunner().invoke(
        cli.app, ["serve", "--host", "127.0.0.1", "--port", str(taken_port)]
    )
    assert result.exit_code == 1, result.output
    assert (
        f"Port {taken_port} on 127.0.0.1 is already in use: stop the other server "
        "or choose another with --port or PORT."
    ) in result.output
    assert len(calls) == 2  # the check before start, and the look after uvicorn gave up


def test_port_in_use_sees_a_listener_and_a_free_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert cli.port_in_use("127.0.0.1", port)
    assert not cli.port_in_use("127.0.0.1", port)
