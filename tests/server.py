"""Run the real service as a subprocess on a free port (for fuzzing, browser and fault tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TOKEN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_server(
    database_url: str, tmp_path: Path, *, extra_env: dict[str, str | None] | None = None
) -> Iterator[RunningServer]:
    """Start `signup-sync serve` against ``database_url`` and wait until /health answers
    (an ``extra_env`` value of None unsets that variable)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGARDE_", "SIGNUP_SYNC_"))}
    # This checkout's sources first, whatever the cwd (a relative PYTHONPATH would not follow
    # the subprocess into tmp_path and an installed copy of the package would answer instead).
    src = str(Path(__file__).resolve().parents[1] / "src")
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p),
            "ENGARDE_DATABASE_URL": database_url,
            "SIGNUP_SYNC_SERVICE_TOKEN": TOKEN,
            "AUTO_MIGRATE": "false",
            "SYNC_SCHEDULER_ENABLED": "false",
            # The fake source servers listen on 127.0.0.1 (refused by default).
            "SIGNUP_SYNC_OUTBOUND_ALLOW": "127.0.0.0/8",
        }
    )
    for name, value in (extra_env or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signup_sync.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", TOKEN, process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{server.logs()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
