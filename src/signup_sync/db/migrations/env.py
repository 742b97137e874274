"""Alembic environment: runs on the connection handed over by signup_sync.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from signup_sync.db.migrate import run_data_step
from signup_sync.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        on_version_apply=run_data_step,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `signup-sync db upgrade`, which supplies the connection"
    )
_run(connection)
