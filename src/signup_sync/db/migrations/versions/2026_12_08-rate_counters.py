"""rate counters: fixed-window request counts shared by workers and replicas

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funnel_rate_counters",
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_funnel_rate_counters")),
    )


def downgrade() -> None:
    op.drop_table("funnel_rate_counters")
