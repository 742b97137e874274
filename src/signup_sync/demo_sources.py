"""Demo rows for the four pulled sources, so a fresh dashboard's sync panel has a story.

Each is created switched off (``is_active`` false, ``schedule`` off: nothing will try to
reach the example hosts), with one finished sync log whose counters are the demo leads
that first came from that source. A rerun leaves existing demo sources alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import Lead
from signup_sync.sync import repository as repo
from signup_sync.sync.schemas import SourceIn
from signup_sync.sync.sources_service import create_source
from signup_sync.vocabulary import SourceType

# (type, name, config, status of its last sync, hours before the data's end it ran)
DEMO_SOURCES: tuple[tuple[SourceType, str, dict[str, Any], str, int], ...] = (
    (
        SourceType.EASYAPPOINTMENTS,
        "Demo booking calendar",
        {
            "base_url": "https://booking.example.com/index.php/api/v1/",
            "site_timezone": "Europe/Madrid",
        },
        "success",
        2,
    ),
    (SourceType.ZOOM, "Demo webinars", {"user_ids": ["webinars@example.com"]}, "success", 3),
    (SourceType.EVENTBRITE, "Demo events", {"organization_id": "215487369012"}, "partial", 4),
    (
        SourceType.POSHVIP,
        "Demo Posh export",
        {"file_url": "https://posh.example.com/exports/demo-export.csv"},
        "success",
        5,
    ),
)


async def add_demo_sources(session: AsyncSession, end: datetime, email_suffix: str) -> int:
    """Create the missing demo sources with a last sync; returns how many were created."""
    first_touch = Lead.first_touch_source_type
    rows = await session.execute(
        select(first_touch, func.count())
        .where(Lead.email.like("%" + email_suffix))
        .group_by(first_touch)
    )
    leads = {str(source): int(n) for source, n in rows.all()}
    created = 0
    for source_type, name, config, status, hours in DEMO_SOURCES:
        if await repo.find_source(session, source_type.value, name) is not None:
            continue
        source = await create_source(
            session,
            SourceIn(
                source_type=source_type, name=name, is_active=False, schedule="off", config=config
            ),
        )
        finished = end - timedelta(hours=hours)
        count = leads.get(source_type.value, 0)
        await repo.insert_log(
            session,
            {
                "source_id": source.id,
                "source_type": source_type.value,
                "source_name": name,
                "status": status,
                "trigger": "demo",
                "started_at": finished - timedelta(seconds=42),
                "completed_at": finished,
                "duration_seconds": 42.0,
                "leads_processed": count,
                "leads_created": count,
                "leads_updated": 0,
                "leads_skipped": 0,
                "errors_count": 1 if status == "partial" else 0,
                "error_messages": (
                    ["page 3: server error 503 (demo)"] if status == "partial" else []
                ),
                "summary": f"demo data: {count} leads",
                "options": {},
                "details": {"demo": True},
            },
        )
        await repo.store_page_progress(session, source.id, cursor=None, leads_created=count)
        await repo.finish_source(session, source.id, at=finished, status=status)
        created += 1
    return created
