"""A database whose schema is behind the code (issue 13, finding 8), on both backends:
`serve` migrates it (or, with AUTO_MIGRATE=false, refuses to start naming the command),
`/health` answers 503 "schema at X, needs Y", `demo` migrates first, and the README's
PostgreSQL lines run as written on an empty database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from signup_sync.app import create_app
from signup_sync.db import migrate
from signup_sync.db.session import create_engine
from signup_sync.settings import load_settings
from tests.conftest import TOKEN, run_async
from tests.fresh_db import fresh_database
from tests.server import run_server

ROOT = Path(__file__).resolve().parents[1]
OLD = "0006"  # two releases behind the head this branch ships


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGARDE_", "SIGNUP_SYNC_"))}
    env.pop("AUTO_MIGRATE", None)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env["ENGARDE_DATABASE_URL"] = url
    env["SIGNUP_SYNC_SERVICE_TOKEN"] = TOKEN
    return env


def cli(url: str, cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signup_sync.cli", *args],
        env={**cli_env(url), **extra},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(load_settings(database_url=url))
    try:
        await migrate.upgrade(engine, revision)
    finally:
        await engine.dispose()


async def _health(url: str) -> httpx.Response:
    settings = load_settings(
        database_url=url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        webhook_worker_enabled=False,
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/health")


async def test_health_is_503_while_the_schema_is_behind(backend: str, tmp_path: Path) -> None:
    head = migrate.head_revision()
    with fresh_database(backend, tmp_path) as url:
        r = await _health(url)  # no tables at all
        assert r.status_code == 503, r.text
        database = r.json()["database"]
        assert database["status"] == "schema_behind"
        assert database["error"].startswith(f"schema at none (no tables), needs {head}")

        await _upgrade(url, OLD)
        r = await _health(url)
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "unhealthy"
        assert f"schema at {OLD}, needs {head}" in r.json()["database"]["error"]
        assert "signup-sync db upgrade" in r.json()["database"]["error"]

        await _upgrade(url, "head")
        r = await _health(url)
        assert r.status_code == 200, r.text
        assert r.json()["database"]["schema_revision"] == head


def test_serve_refuses_a_schema_behind_when_auto_migrate_is_off(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        run_async(_upgrade(url, OLD))
        done = cli(url, tmp_path, "serve", "--port", "1", AUTO_MIGRATE="false")
        assert done.returncode == 1, done.stdout + done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert f"schema at {OLD}, needs {migrate.head_revision()}" in lines[0]
        assert "signup-sync db upgrade" in lines[0]
        assert "Traceback" not in done.stderr


def test_serve_migrates_an_empty_database_then_takes_events(backend: str, tmp_path: Path) -> None:
    with (
        fresh_database(backend, tmp_path) as url,
        run_server(url, tmp_path, extra_env={"AUTO_MIGRATE": None}) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http,
    ):
        assert http.get("/health").json()["status"] == "healthy"
        body = {"source_type": "manual", "event_type": "lead_captured", "email": "a@b.example"}
        assert http.post("/funnel/event", json=body).status_code == 201


def readme_postgres_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("To run it against PostgreSQL", 1)[1].split("```bash", 1)[1]
    lines = block.split("```", 1)[0].strip().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines]


def test_the_readme_postgresql_lines_run_on_an_empty_database(backend: str, tmp_path: Path) -> None:
    """`demo` then `serve`, as the README writes them, on a database with no tables."""
    commands = readme_postgres_commands()
    assert re.fullmatch(r"export ENGARDE_DATABASE_URL=postgresql://\S+", commands[0])
    assert commands[1:] == [".venv/bin/signup-sync demo", ".venv/bin/signup-sync serve"]
    with fresh_database(backend, tmp_path) as url:
        # The demo's size is an option; the command is the README's.
        done = cli(url, tmp_path, "demo", "--leads", "60")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        with run_server(url, tmp_path, extra_env={"AUTO_MIGRATE": None}) as server:
            r = httpx.get(
                f"{server.url}/analytics/funnel-metrics",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            assert r.json()["total_leads"] > 0
