"""analytics rollups: per-day lead, event, credit and conversion counts, kept by triggers

Funnel metrics over a million leads cannot scan events (or even leads) per request. On
PostgreSQL, statement-level triggers on funnel_leads, funnel_events and funnel_conversions
mark the UTC days a write touches in funnel_rollup_dirty; analytics.rollup.refresh
recomputes those days. Existing data: every day is marked, so the first refresh builds them.
SQLite gets the tables but no triggers (the embedded default answers from the base tables).

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DIMS = ("source_type", "channel", "utm_source", "utm_medium", "utm_campaign")
LEAD_FIELDS = (
    "stage", "first_seen_at", "first_touch_source_type", "first_touch_channel",
    "first_touch_utm_source", "first_touch_utm_medium", "first_touch_utm_campaign",
    "first_touch_item", "first_touch_item_name",
)  # fmt: skip


def _day(column: str, alias: str) -> str:
    return f"({alias}.{column} AT TIME ZONE 'UTC')::date"


def _mark(select_days: str) -> str:
    # Ordered, so that concurrent writers wait on the same day rows in the same order.
    return (
        f"INSERT INTO funnel_rollup_dirty (day) SELECT DISTINCT d FROM ({select_days}) s(d) "
        "WHERE d IS NOT NULL ORDER BY d ON CONFLICT DO NOTHING;"
    )


def _function(name: str, on_new: str, on_old: str, on_update: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {on_new}
  ELSIF TG_OP = 'DELETE' THEN
    {on_old}
  ELSE
    {on_update}
  END IF;
  RETURN NULL;
END $$"""


def _triggers(table: str, function: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_rollup_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS "
        f"rollup_new FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {table}_rollup_upd AFTER UPDATE ON {table} REFERENCING OLD TABLE AS "
        f"rollup_old NEW TABLE AS rollup_new FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {table}_rollup_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS "
        f"rollup_old FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def _postgres_sql() -> list[str]:
    changed = " OR ".join(f"n.{f} IS DISTINCT FROM o.{f}" for f in LEAD_FIELDS)
    leads = _function(
        "funnel_rollup_mark_leads",
        _mark(f"SELECT {_day('first_seen_at', 'n')} FROM rollup_new n"),
        _mark(f"SELECT {_day('first_seen_at', 'o')} FROM rollup_old o"),
        # Only leads whose counted state changed (an upsert that adds an event to a known
        # lead usually changes nothing the rollups hold); both their old and new day.
        _mark(
            f"SELECT unnest(ARRAY[{_day('first_seen_at', 'n')}, {_day('first_seen_at', 'o')}])"
            f" FROM rollup_new n JOIN rollup_old o ON o.id = n.id WHERE {changed}"
        ),
    )
    events = _function(
        "funnel_rollup_mark_events",
        _mark(f"SELECT {_day('occurred_at', 'n')} FROM rollup_new n"),
        _mark(f"SELECT {_day('occurred_at', 'o')} FROM rollup_old o"),
        _mark(
            f"SELECT {_day('occurred_at', 'n')} FROM rollup_new n UNION ALL "
            f"SELECT {_day('occurred_at', 'o')} FROM rollup_old o"
        ),
    )
    lead_day = _day("first_seen_at", "l")
    conversions = _function(
        "funnel_rollup_mark_conversions",
        _mark(f"SELECT {lead_day} FROM rollup_new c JOIN funnel_leads l ON l.id = c.lead_id"),
        _mark(f"SELECT {lead_day} FROM rollup_old c JOIN funnel_leads l ON l.id = c.lead_id"),
        _mark(
            f"SELECT {lead_day} FROM (SELECT lead_id FROM rollup_new UNION "
            "SELECT lead_id FROM rollup_old) c JOIN funnel_leads l ON l.id = c.lead_id"
        ),
    )
    return [
        leads,
        events,
        conversions,
        *_triggers("funnel_leads", "funnel_rollup_mark_leads"),
        *_triggers("funnel_events", "funnel_rollup_mark_events"),
        *_triggers("funnel_conversions", "funnel_rollup_mark_conversions"),
        "INSERT INTO funnel_rollup_dirty (day) "
        f"SELECT {_day('first_seen_at', 'l')} FROM funnel_leads l UNION "
        f"SELECT {_day('occurred_at', 'e')} FROM funnel_events e ON CONFLICT DO NOTHING",
    ]


def upgrade() -> None:
    op.create_table(
        "funnel_rollup_dirty",
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_funnel_rollup_dirty")),
    )

    def dims() -> list[sa.Column[str]]:
        return [
            *(sa.Column(name, sa.String(length=255), nullable=True) for name in DIMS),
            sa.Column("item", sa.String(length=300), nullable=True),
            sa.Column("item_name", sa.String(length=255), nullable=True),
        ]

    op.create_table(
        "funnel_rollup_leads",
        sa.Column("day", sa.Date(), nullable=False),
        *dims(),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("leads", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "funnel_rollup_events",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("events", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "funnel_rollup_credits",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("lead_source_type", sa.String(length=32), nullable=True),
        sa.Column("lead_utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("conversion_type", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=20), nullable=False),
        *dims(),
        sa.Column("micros", sa.BigInteger(), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "funnel_rollup_conversions",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("lead_source_type", sa.String(length=32), nullable=True),
        sa.Column("lead_utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("conversion_type", sa.String(length=64), nullable=False),
        sa.Column("credited", sa.Boolean(), nullable=False),
        sa.Column("days_to_conversion", sa.Integer(), nullable=True),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=2), nullable=True),
    )
    for table in ("leads", "events", "credits", "conversions"):
        name = f"funnel_rollup_{table}"
        op.create_index(op.f(f"ix_{name}_day"), name, ["day"], unique=False)
    op.create_index(
        op.f("ix_funnel_rollup_credits_model_day"),
        "funnel_rollup_credits",
        ["model", "day"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _postgres_sql():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("funnel_leads", "funnel_events", "funnel_conversions"):
            for suffix in ("ins", "upd", "del"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup_{suffix} ON {table}")
        for name in ("leads", "events", "conversions"):
            op.execute(f"DROP FUNCTION IF EXISTS funnel_rollup_mark_{name}()")
    op.drop_index(op.f("ix_funnel_rollup_credits_model_day"), table_name="funnel_rollup_credits")
    for table in ("conversions", "credits", "events", "leads"):
        name = f"funnel_rollup_{table}"
        op.drop_index(op.f(f"ix_{name}_day"), table_name=name)
        op.drop_table(name)
    op.drop_table("funnel_rollup_dirty")
