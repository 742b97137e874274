"""The signup-sync command line, run as a real process."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from signup_sync.settings import load_settings

CLI = [sys.executable, "-m", "signup_sync.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGARDE_", "SIGNUP_SYNC_"))}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_secrets_key_prints_a_key_the_settings_accept() -> None:
    out = subprocess.run([*CLI, "secrets-key"], capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    assert load_settings(secrets_key=key).secrets_key_list == [key]


def test_token_prints_a_random_hex_token() -> None:
    out = subprocess.run([*CLI, "token"], capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", out)


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "db", "upgrade"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stderr
    assert (tmp_path / "signup_sync.db").exists()


def test_serve_on_sqlite_prints_url_and_token_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = ""
        token = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and token is None:
            line = proc.stderr.readline()
            banner += line
            if m := re.search(r"Token \(generated for this run\): ([0-9a-f]{64})", line):
                token = m.group(1)
        assert f"http://127.0.0.1:{port}" in banner
        assert token, banner
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(100):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            r = http.post(
                "/funnel/event",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "source_type": "easyappointments",
                    "event_type": "appointment_booked",
                    "email": "test@example.com",
                    "first_name": "John",
                    "last_name": "Doe",
                },
            )
            assert r.status_code == 201, r.text
            assert http.post("/funnel/event", json={}).status_code == 401
        _idle_connection_is_kept(port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    log_lines = [line for line in proc.stderr.read().splitlines() if line.startswith("{")]
    assert log_lines
    assert not [line for line in log_lines if token in line]  # shown in the banner, never logged


def _idle_connection_is_kept(port: int) -> None:
    """A keep-alive connection idle past uvicorn's default 5 s still answers: a client (or a
    proxy) reusing it must not meet a connection the server is closing. (http.client does
    not reconnect on its own: a closed connection fails the second request.)"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for pause in (0.0, 6.5):
            time.sleep(pause)
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("connection", "").lower() != "close"
    finally:
        conn.close()
