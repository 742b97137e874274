"""Alembic migrations: up on an empty database, down and up again, on both backends."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect

from signup_sync.db import migrate
from signup_sync.db.session import create_engine
from signup_sync.settings import load_settings
from signup_sync.upgrade import upgrade as upgrade_schema
from tests.conftest import IN_CI, PG_URL, _with_database

TABLES = {
    "funnel_sources",
    "funnel_events",
    "funnel_conversions",
    "funnel_sync_logs",
    "funnel_leads",
}


async def _tables(engine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _round_trip(url: str) -> None:
    engine = create_engine(load_settings(database_url=url))
    try:
        assert await migrate.current_revision(engine) is None
        await upgrade_schema(engine)
        assert await _tables(engine) >= TABLES
        assert await migrate.current_revision(engine) == migrate.head_revision()
        await upgrade_schema(engine)  # a second upgrade is a no-op
        await migrate.downgrade(engine, "base")
        assert not (TABLES & await _tables(engine))
        await upgrade_schema(engine)
        assert await _tables(engine) >= TABLES
    finally:
        await engine.dispose()


async def test_sqlite_from_empty(tmp_path: Path) -> None:
    await _round_trip(f"sqlite:///{tmp_path / 'fresh.db'}")


async def test_postgresql_from_empty() -> None:
    name = f"signup_sync_mig_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL not reachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await _round_trip(_with_database(PG_URL, name))
        # timestamps are timestamptz on PostgreSQL
        conn = await asyncpg.connect(_with_database(PG_URL, name))
        try:
            types = await conn.fetch(
                "SELECT DISTINCT data_type FROM information_schema.columns "
                "WHERE table_name LIKE 'funnel_%' AND column_name LIKE '%_at'"
            )
        finally:
            await conn.close()
        assert {t["data_type"] for t in types} == {"timestamp with time zone"}
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_migrations_import_nothing_from_the_application() -> None:
    """An old migration must not change when the application's rules do (issue 14, point 6)."""
    import ast

    versions = Path(migrate.MIGRATIONS_DIR) / "versions"
    offenders = []
    for path in sorted(versions.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "signup_sync"]
    assert offenders == []
