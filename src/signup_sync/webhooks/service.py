"""The inbox as operators see it: list deliveries, replay a failed or parked one."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import WebhookDelivery
from signup_sync.db.types import utcnow
from signup_sync.errors import Conflict, NotFound
from signup_sync.webhooks import repository as repo
from signup_sync.webhooks.schemas import DeliveryOut

BODY_PREVIEW = 8 * 1024
# Eventbrite echoes our webhook URL (with its ?secret=) in config.endpoint_url.
_URL_SECRET = re.compile(r"([?&]secret=)[^&\"\s]+")


def body_preview(raw: bytes) -> str:
    """The body as text for the inbox API: capped, URL secrets blanked."""
    text = bytes(raw[:BODY_PREVIEW]).decode("utf-8", "replace")
    return _URL_SECRET.sub(r"\1[redacted]", text)


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        source_type=row.source_type,
        source_id=row.source_id,
        received_at=row.received_at,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        processed_at=row.processed_at,
        dedupe_key=row.dedupe_key,
        headers=row.headers,
        body=body_preview(row.body),
        result=row.result,
    )


async def list_inbox(
    session: AsyncSession,
    *,
    status: str | None = None,
    source_type: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[DeliveryOut]:
    rows = await repo.list_deliveries(
        session, status=status, source_type=source_type, before_id=before_id, limit=limit
    )
    return [delivery_out(row) for row in rows]


async def replay(session: AsyncSession, delivery_id: int) -> DeliveryOut:
    """Queue a delivery again (fresh attempt budget); 409 while it is pending or processing."""
    if not await repo.requeue(session, delivery_id, now=utcnow()):
        row = await repo.get_delivery(session, delivery_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        raise Conflict(f"delivery {delivery_id} is {row.status}; only failed, parked or done "
                       "deliveries can be replayed")  # fmt: skip
    row = await repo.get_delivery(session, delivery_id)
    assert row is not None
    return delivery_out(row)
