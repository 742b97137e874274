"""channels, attribution credits, per-lead stage times

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:00:00

Adds funnel_events.channel, the lead's first-touch channel and item, the per-lead
stage_N_at times and the funnel_attribution_credits table, and fills them in for rows
stored before (conversions recorded before this revision keep no per-model credits).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STAGES = range(1, 7)
BATCH = 1000
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("funnel_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=32), nullable=True))
    with op.batch_alter_table("funnel_leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_touch_channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("first_touch_item", sa.String(length=300), nullable=True))
        batch_op.add_column(
            sa.Column("first_touch_item_name", sa.String(length=255), nullable=True)
        )
        for n in STAGES:
            batch_op.add_column(
                sa.Column(f"stage_{n}_at", sa.DateTime(timezone=True), nullable=True)
            )
        batch_op.create_index(
            batch_op.f("ix_funnel_leads_first_touch_channel_first_seen_at"),
            ["first_touch_channel", "first_seen_at"],
            unique=False,
        )
    op.create_table(
        "funnel_attribution_credits",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("conversion_id", BIG_ID, nullable=False),
        sa.Column("lead_id", BIG_ID, nullable=False),
        sa.Column("model", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event_id", BIG_ID, nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("utm_source", sa.String(length=255), nullable=True),
        sa.Column("utm_medium", sa.String(length=255), nullable=True),
        sa.Column("utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("item", sa.String(length=300), nullable=True),
        sa.Column("item_name", sa.String(length=255), nullable=True),
        sa.Column("credit_micros", sa.Integer(), nullable=False),
        sa.Column("value_cents", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversion_id"],
            ["funnel_conversions.id"],
            name=op.f("fk_funnel_attribution_credits_conversion_id_funnel_conversions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["funnel_leads.id"],
            name=op.f("fk_funnel_attribution_credits_lead_id_funnel_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_attribution_credits")),
    )
    with op.batch_alter_table("funnel_attribution_credits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funnel_attribution_credits_conversion_id"),
            ["conversion_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funnel_attribution_credits_lead_id_model"),
            ["lead_id", "model"],
            unique=False,
        )
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    from signup_sync.attribution.touches import item_of
    from signup_sync.channels import derive_channel

    leads = sa.table(
        "funnel_leads",
        sa.column("id"),
        sa.column("first_touch_channel"),
        sa.column("first_touch_item"),
        sa.column("first_touch_item_name"),
        *(sa.column(f"stage_{n}_at") for n in STAGES),
    )
    events = sa.table(
        "funnel_events",
        *(
            sa.column(name)
            for name in (
                "id", "lead_id", "source_type", "stage", "status", "occurred_at", "utm_source",
                "utm_medium", "utm_campaign", "referrer", "landing_page", "gclid", "fbclid",
                "msclkid", "channel",
            )
        ),
        sa.column("metadata", sa.JSON()),
    )  # fmt: skip
    # stage_N_at: the earliest active event at stage N or later.
    conn.execute(
        leads.update().values(
            {
                f"stage_{n}_at": sa.select(sa.func.min(events.c.occurred_at))
                .where(
                    events.c.lead_id == leads.c.id,
                    events.c.status == "active",
                    events.c.stage >= n,
                )
                .scalar_subquery()
                for n in STAGES
            }
        )
    )
    # Channels are Python rules: stream the events, each lead's first (active) one first.
    rows = conn.execute(
        sa.select(events).order_by(
            events.c.lead_id,
            sa.case((events.c.status == "active", 0), else_=1),
            events.c.occurred_at,
            events.c.id,
        )
    )
    event_updates: list[dict[str, Any]] = []
    lead_updates: list[dict[str, Any]] = []
    last_lead = None
    for row in rows:
        channel = derive_channel(
            row.source_type,
            utm_source=row.utm_source,
            utm_medium=row.utm_medium,
            utm_campaign=row.utm_campaign,
            referrer=row.referrer,
            landing_page=row.landing_page,
            gclid=row.gclid,
            fbclid=row.fbclid,
            msclkid=row.msclkid,
        )
        event_updates.append({"b_id": row.id, "b_channel": channel})
        if row.lead_id != last_lead:
            last_lead = row.lead_id
            item, name = item_of(row.metadata if isinstance(row.metadata, dict) else None)
            lead_updates.append(
                {"b_id": row.lead_id, "b_channel": channel, "b_item": item, "b_name": name}
            )
    for start in range(0, len(event_updates), BATCH):
        conn.execute(
            events.update()
            .where(events.c.id == sa.bindparam("b_id"))
            .values(channel=sa.bindparam("b_channel")),
            event_updates[start : start + BATCH],
        )
    for start in range(0, len(lead_updates), BATCH):
        conn.execute(
            leads.update()
            .where(leads.c.id == sa.bindparam("b_id"))
            .values(
                first_touch_channel=sa.bindparam("b_channel"),
                first_touch_item=sa.bindparam("b_item"),
                first_touch_item_name=sa.bindparam("b_name"),
            ),
            lead_updates[start : start + BATCH],
        )


def downgrade() -> None:
    with op.batch_alter_table("funnel_attribution_credits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_attribution_credits_lead_id_model"))
        batch_op.drop_index(batch_op.f("ix_funnel_attribution_credits_conversion_id"))
    op.drop_table("funnel_attribution_credits")
    with op.batch_alter_table("funnel_leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funnel_leads_first_touch_channel_first_seen_at"))
        for n in reversed(STAGES):
            batch_op.drop_column(f"stage_{n}_at")
        batch_op.drop_column("first_touch_item_name")
        batch_op.drop_column("first_touch_item")
        batch_op.drop_column("first_touch_channel")
    with op.batch_alter_table("funnel_events", schema=None) as batch_op:
        batch_op.drop_column("channel")
