"""core funnel tables

Revision ID: 0001
Revises:
Create Date: 2026-11-30 02:42:45.780662
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funnel_leads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("company", sa.String(length=200), nullable=True),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_touch_source_type", sa.String(length=32), nullable=True),
        sa.Column("first_touch_utm_source", sa.String(length=255), nullable=True),
        sa.Column("first_touch_utm_medium", sa.String(length=255), nullable=True),
        sa.Column("first_touch_utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_leads")),
        sa.UniqueConstraint("email", name=op.f("uq_funnel_leads_email")),
        sa.UniqueConstraint("phone_e164", name=op.f("uq_funnel_leads_phone_e164")),
    )
    with op.batch_alter_table("funnel_leads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_leads_first_seen_at"), ["first_seen_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_leads_first_touch_source_type_first_seen_at"),
            ["first_touch_source_type", "first_seen_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_leads_first_touch_utm_campaign_first_seen_at"),
            ["first_touch_utm_campaign", "first_seen_at"],
            unique=False,
        )

    op.create_table(
        "funnel_sources",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(length=100), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "cursor",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_status", sa.String(length=16), nullable=True),
        sa.Column("total_leads_captured", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "lease_sync_log_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_sources")),
        sa.UniqueConstraint("source_type", "name", name=op.f("uq_funnel_sources_source_type_name")),
    )
    op.create_table(
        "funnel_conversions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("conversion_type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lookback_days", sa.Integer(), nullable=False),
        sa.Column(
            "converted_event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "first_touch_event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("first_touch_source_type", sa.String(length=32), nullable=True),
        sa.Column("first_touch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_touch_event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("last_touch_source_type", sa.String(length=32), nullable=True),
        sa.Column("last_touch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("days_to_conversion", sa.Integer(), nullable=True),
        sa.Column("total_touchpoints", sa.Integer(), nullable=False),
        sa.Column(
            "attribution",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["funnel_leads.id"],
            name=op.f("fk_funnel_conversions_lead_id_funnel_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_conversions")),
        sa.UniqueConstraint(
            "lead_id", "conversion_type", name=op.f("uq_funnel_conversions_lead_id_conversion_type")
        ),
    )
    with op.batch_alter_table("funnel_conversions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_conversions_converted_at"), ["converted_at"], unique=False
        )

    op.create_table(
        "funnel_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("utm_source", sa.String(length=255), nullable=True),
        sa.Column("utm_medium", sa.String(length=255), nullable=True),
        sa.Column("utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("utm_term", sa.String(length=255), nullable=True),
        sa.Column("utm_content", sa.String(length=255), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("landing_page", sa.Text(), nullable=True),
        sa.Column("gclid", sa.String(length=255), nullable=True),
        sa.Column("fbclid", sa.String(length=255), nullable=True),
        sa.Column("msclkid", sa.String(length=255), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["funnel_leads.id"],
            name=op.f("fk_funnel_events_lead_id_funnel_leads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["funnel_sources.id"],
            name=op.f("fk_funnel_events_source_id_funnel_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_funnel_events_idempotency_key")),
        sa.UniqueConstraint(
            "source_type",
            "external_id",
            "event_type",
            name=op.f("uq_funnel_events_source_type_external_id_event_type"),
        ),
    )
    with op.batch_alter_table("funnel_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_events_lead_id_occurred_at"),
            ["lead_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_events_occurred_at_event_type"),
            ["occurred_at", "event_type"],
            unique=False,
        )

    op.create_table(
        "funnel_sync_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("leads_processed", sa.Integer(), nullable=False),
        sa.Column("leads_created", sa.Integer(), nullable=False),
        sa.Column("leads_updated", sa.Integer(), nullable=False),
        sa.Column("leads_skipped", sa.Integer(), nullable=False),
        sa.Column("errors_count", sa.Integer(), nullable=False),
        sa.Column(
            "error_messages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["funnel_sources.id"],
            name=op.f("fk_funnel_sync_logs_source_id_funnel_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_sync_logs")),
    )
    with op.batch_alter_table("funnel_sync_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_sync_logs_source_id_started_at"),
            ["source_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_sync_logs_source_type_started_at"),
            ["source_type", "started_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("funnel_sync_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_sync_logs_source_type_started_at"))
        batch_op.drop_index(batch_op.f("ix_funnel_sync_logs_source_id_started_at"))

    op.drop_table("funnel_sync_logs")
    with op.batch_alter_table("funnel_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_events_occurred_at_event_type"))
        batch_op.drop_index(batch_op.f("ix_funnel_events_lead_id_occurred_at"))

    op.drop_table("funnel_events")
    with op.batch_alter_table("funnel_conversions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_conversions_converted_at"))

    op.drop_table("funnel_conversions")
    op.drop_table("funnel_sources")
    with op.batch_alter_table("funnel_leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_leads_first_touch_utm_campaign_first_seen_at"))
        batch_op.drop_index(batch_op.f("ix_funnel_leads_first_touch_source_type_first_seen_at"))
        batch_op.drop_index(batch_op.f("ix_funnel_leads_first_seen_at"))

    op.drop_table("funnel_leads")
