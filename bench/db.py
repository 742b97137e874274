"""Benchmark databases on the local PostgreSQL: create, migrate, and the data set marker."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson


def plain(url: str) -> str:
    """A libpq-style URL for asyncpg (no ``+asyncpg`` driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def name_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def recreate(url: str) -> None:
    admin = await asyncpg.connect(plain(with_database(url, "postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name_of(url)}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name_of(url)}"')
    finally:
        await admin.close()


async def exists(url: str) -> bool:
    admin = await asyncpg.connect(plain(with_database(url, "postgres")))
    try:
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name_of(url))
        return found is not None
    finally:
        await admin.close()


async def migrate(url: str) -> None:
    from signup_sync.db import migrate as migrations
    from signup_sync.db.session import create_engine
    from signup_sync.settings import load_settings

    engine = create_engine(load_settings(database_url=url))
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def marker(url: str) -> dict[str, Any] | None:
    if not await exists(url):
        return None
    conn = await asyncpg.connect(plain(url))
    try:
        table = await conn.fetchval("SELECT to_regclass('bench_dataset')")
        if table is None:
            return None
        raw = await conn.fetchval("SELECT info FROM bench_dataset WHERE id = 1")
        return orjson.loads(raw) if raw else None
    finally:
        await conn.close()


async def set_marker(url: str, info: dict[str, Any]) -> None:
    conn = await asyncpg.connect(plain(url))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_dataset (id int PRIMARY KEY, info text)"
        )
        await conn.execute(
            "INSERT INTO bench_dataset VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET info = $1",
            orjson.dumps(info).decode(),
        )
    finally:
        await conn.close()
