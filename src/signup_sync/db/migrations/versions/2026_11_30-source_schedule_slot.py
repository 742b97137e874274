"""funnel_sources.last_scheduled_at: the schedule slot a scheduler last claimed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("funnel_sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_scheduled_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("funnel_sources", schema=None) as batch_op:
        batch_op.drop_column("last_scheduled_at")
