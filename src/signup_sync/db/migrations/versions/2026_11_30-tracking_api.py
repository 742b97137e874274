"""tracking API: received Segment messages and the anonymous/user id map

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "funnel_tracking_messages",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("write_key_id", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("event_name", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("anonymous_id", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("lead_id", BIG_ID, nullable=True),
        sa.Column("event_id", BIG_ID, nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["funnel_leads.id"],
            name=op.f("fk_funnel_tracking_messages_lead_id_funnel_leads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_tracking_messages")),
        sa.UniqueConstraint(
            "write_key_id",
            "message_id",
            name=op.f("uq_funnel_tracking_messages_write_key_id_message_id"),
        ),
    )
    with op.batch_alter_table("funnel_tracking_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_tracking_messages_status_event_name"),
            ["status", "event_name"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_tracking_messages_anonymous_id_status"),
            ["anonymous_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_tracking_messages_user_id_status"),
            ["user_id", "status"],
            unique=False,
        )
    op.create_table(
        "funnel_tracking_identities",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("linked_user_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_tracking_identities")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_funnel_tracking_identities_kind_value")),
    )
    with op.batch_alter_table("funnel_tracking_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_tracking_identities_linked_user_id"),
            ["linked_user_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("funnel_tracking_identities")
    op.drop_table("funnel_tracking_messages")
