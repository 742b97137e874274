"""privacy: erasure tombstones and their hash key; funnel_sources.last_success_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_hash_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        # NULL when the key comes from PRIVACY_HASH_KEY; only its fingerprint is kept then.
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_hash_keys")),
    )
    op.create_table(
        "privacy_tombstones",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("identifier_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_tombstones")),
        sa.UniqueConstraint("identifier_hash", name=op.f("uq_privacy_tombstones_identifier_hash")),
    )
    with op.batch_alter_table("funnel_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True))
    # Backfill from the sync logs so the staleness metric is right from the first scrape.
    op.execute(
        "UPDATE funnel_sources SET last_success_at = ("
        "SELECT MAX(l.completed_at) FROM funnel_sync_logs l "
        "WHERE l.source_id = funnel_sources.id AND l.status = 'success')"
    )


def downgrade() -> None:
    with op.batch_alter_table("funnel_sources", schema=None) as batch_op:
        batch_op.drop_column("last_success_at")
    op.drop_table("privacy_tombstones")
    op.drop_table("privacy_hash_keys")
