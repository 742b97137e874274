"""Every table and every text/JSON/bytes column is classified for erasure (privacy.registry).

A new table or column that could hold a person's email or phone must say what erasure does
with it before it ships: these tests fail until ``REGISTRY`` names it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, LargeBinary, String, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import Base
from signup_sync.privacy.registry import REGISTRY

# Tables the migrations keep for themselves (no application data).
MIGRATION_TABLES = {"alembic_version"}


def holds_text(column_type: Any) -> bool:
    return isinstance(column_type, String | JSON | LargeBinary)


def test_every_model_table_and_text_column_is_classified() -> None:
    missing: list[str] = []
    for table in Base.metadata.sorted_tables:
        rule = REGISTRY.get(table.name)
        if rule is None:
            missing.append(table.name)
            continue
        missing += [
            f"{table.name}.{c.name}"
            for c in table.columns
            if holds_text(c.type) and c.name not in rule.columns
        ]
    assert missing == [], f"classify these in signup_sync/privacy/registry.py: {missing}"


def test_the_registry_names_only_real_text_columns() -> None:
    tables = Base.metadata.tables
    assert set(REGISTRY) == set(tables)
    stale = [
        f"{name}.{column}"
        for name, rule in REGISTRY.items()
        for column in rule.columns
        if column not in tables[name].columns or not holds_text(tables[name].columns[column].type)
    ]
    assert stale == []


def test_personal_columns_say_how_erasure_reaches_them() -> None:
    for name, rule in REGISTRY.items():
        for column, col in rule.columns.items():
            assert col.why, f"{name}.{column} needs a reason"
            if col.personal and col.erase == "none":
                assert rule.person_rows, f"{name}.{column}: personal but nothing erases it"
            if not col.personal:
                assert col.erase == "none", f"{name}.{column}"


async def test_the_migrated_database_has_nothing_unclassified(engine: AsyncEngine) -> None:
    """The schema the migrations build (not only the models) is covered: a table or a text
    column added by a migration alone fails here."""

    def read(sync_conn: Any) -> list[str]:
        found = inspect(sync_conn)
        missing = []
        for table in found.get_table_names():
            if table in MIGRATION_TABLES:
                continue
            rule = REGISTRY.get(table)
            if rule is None:
                missing.append(table)
                continue
            for column in found.get_columns(table):
                type_name = str(column["type"]).upper()
                texty = any(
                    t in type_name for t in ("CHAR", "TEXT", "JSON", "BLOB", "BYTEA", "CLOB")
                )
                if texty and column["name"] not in rule.columns:
                    missing.append(f"{table}.{column['name']}")
        return missing

    async with engine.connect() as conn:
        assert await conn.run_sync(read) == []
