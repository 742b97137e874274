"""funnel_webhook_inbox: verified webhook deliveries, stored raw before they are processed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "funnel_webhook_inbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_id", _ID, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headers", _JSON, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("result", _JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["funnel_sources.id"],
            name=op.f("fk_funnel_webhook_inbox_source_id_funnel_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_webhook_inbox")),
        sa.UniqueConstraint(
            "source_type",
            "source_id",
            "dedupe_key",
            name=op.f("uq_funnel_webhook_inbox_source_type_source_id_dedupe_key"),
        ),
    )
    with op.batch_alter_table("funnel_webhook_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_webhook_inbox_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("funnel_webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_webhook_inbox_status_next_attempt_at"))
    op.drop_table("funnel_webhook_inbox")
