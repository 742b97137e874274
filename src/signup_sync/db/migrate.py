"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every replica that migrates at start.
_MIGRATION_LOCK_KEY = 0x5159_4E43

# A data step runs on the migration's connection right after the named revision is applied,
# in the same transaction. Steps that need the application's rules (which a migration must
# not import, or an old migration would change whenever the rules do) come in this way.
DataStep = Callable[[Connection], None]


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection, revision: str, data_steps: Mapping[str, DataStep]) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait and then find nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    cfg.attributes["data_steps"] = dict(data_steps)
    command.upgrade(cfg, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, data_steps: Mapping[str, DataStep] | None = None
) -> None:
    """Apply migrations up to ``revision`` in one transaction.

    Without ``data_steps`` only the schema moves (see ``signup_sync.upgrade``, which adds the
    application's steps).
    """
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision, data_steps or {})


def run_data_step(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic ``on_version_apply`` hook: run the data step of a revision just upgraded to."""
    if not step.is_upgrade or ctx.config is None or ctx.connection is None:
        return
    steps: Mapping[str, DataStep] = ctx.config.attributes.get("data_steps", {})
    for revision in step.up_revision_ids:
        if revision in steps:
            steps[revision](ctx.connection)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def _down(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_down)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> list[str]:
    """Every revision shipped in the package."""
    return [rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
