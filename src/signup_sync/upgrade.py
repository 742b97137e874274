"""Schema upgrades with the application's data steps.

A migration imports nothing from the application: its behaviour would otherwise change with
every change to the application's rules. What needs those rules (channels of rows stored
before revision 0002) runs here, as a data step on the migration's connection right after
its revision, in the same transaction. Every command that upgrades goes through ``upgrade``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.attribution.touches import item_of
from signup_sync.channels import derive_channel
from signup_sync.db import migrate

_BATCH = 1000
_SIGNALS = (
    "utm_source", "utm_medium", "utm_campaign", "referrer", "landing_page", "gclid", "fbclid",
    "msclkid",
)  # fmt: skip


def backfill_channels(conn: Connection) -> None:
    """Revision 0002's data step: each event's channel, each lead's first-touch channel/item.

    Tables are named here as they stand at revision 0002, not through the current models.
    """
    leads = sa.table(
        "funnel_leads",
        *(sa.column(n) for n in ("id", "first_touch_channel", "first_touch_item")),
        sa.column("first_touch_item_name"),
    )
    events = sa.table(
        "funnel_events",
        *(sa.column(n) for n in ("id", "lead_id", "source_type", "status", "occurred_at")),
        *(sa.column(n) for n in (*_SIGNALS, "channel")),
        sa.column("metadata", sa.JSON()),
    )
    # Each lead's first active event first: it is the lead's first touch.
    rows = conn.execute(
        sa.select(events).order_by(
            events.c.lead_id,
            sa.case((events.c.status == "active", 0), else_=1),
            events.c.occurred_at,
            events.c.id,
        )
    ).mappings()
    event_updates: list[dict[str, Any]] = []
    lead_updates: list[dict[str, Any]] = []
    last_lead = None
    for row in rows:
        channel = derive_channel(row["source_type"], **{name: row[name] for name in _SIGNALS})
        event_updates.append({"b_id": row["id"], "b_channel": channel})
        if row["lead_id"] != last_lead:
            last_lead = row["lead_id"]
            metadata = row["metadata"]
            item, name = item_of(metadata if isinstance(metadata, dict) else None)
            lead_updates.append(
                {"b_id": last_lead, "b_channel": channel, "b_item": item, "b_name": name}
            )
    for start in range(0, len(event_updates), _BATCH):
        conn.execute(
            events.update()
            .where(events.c.id == sa.bindparam("b_id"))
            .values(channel=sa.bindparam("b_channel")),
            event_updates[start : start + _BATCH],
        )
    for start in range(0, len(lead_updates), _BATCH):
        conn.execute(
            leads.update()
            .where(leads.c.id == sa.bindparam("b_id"))
            .values(
                first_touch_channel=sa.bindparam("b_channel"),
                first_touch_item=sa.bindparam("b_item"),
                first_touch_item_name=sa.bindparam("b_name"),
            ),
            lead_updates[start : start + _BATCH],
        )


DATA_STEPS: dict[str, migrate.DataStep] = {"0002": backfill_channels}


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` with the application's data steps."""
    await migrate.upgrade(engine, revision, data_steps=DATA_STEPS)
