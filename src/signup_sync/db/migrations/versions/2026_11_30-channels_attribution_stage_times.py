"""channels, attribution credits, per-lead stage times

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:00:00

Adds funnel_events.channel, the lead's first-touch channel and item, the per-lead
stage_N_at times and the funnel_attribution_credits table, and fills them in for rows
stored before (conversions recorded before this revision keep no per-model credits).
Channels and first-touch items of those rows are the data step of this revision, run by
``signup_sync.upgrade`` with the rules of the running application.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STAGES = range(1, 7)
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
    # Channels and items come from the application's rules, which this file must not import
    # (an old migration would change whenever they do): signup_sync.upgrade runs them as the
    # data step of this revision. Only what plain SQL defines is filled in here.
    leads = sa.table("funnel_leads", sa.column("id"), *(sa.column(f"stage_{n}_at") for n in STAGES))
    events = sa.table(
        "funnel_events",
        *(sa.column(n) for n in ("lead_id", "stage", "status", "occurred_at")),
    )
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
