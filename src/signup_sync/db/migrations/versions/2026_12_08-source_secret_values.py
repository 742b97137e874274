"""funnel_sources.secret_values: secret values given in the API, encrypted

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("funnel_sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "secret_values",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("funnel_sources", schema=None) as batch_op:
        batch_op.drop_column("secret_values")
