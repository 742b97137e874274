"""Shared by the webhook tests: sources with webhook secrets, signed Zoom bodies, inbox reads."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync.db.models import FunnelEvent, WebhookDelivery
from tests.fakes.zoom import ACCOUNT_ID, HOST, M1

ZOOM_SECRET = "zoom_wh_secret_TEST_123"  # source-apis.md §6
EA_SECRET = "9f1c2d3e4b5a69788796a5b4c3d2e1f0"
EB_SECRET = "eb-url-secret-4711-abcdef"
POSH_SECRET = "posh-relay-secret-2024"
ENV = {
    "SIGNUP_SYNC_SOURCE_TEST_ZOOM_WEBHOOK_SECRET": ZOOM_SECRET,
    "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET": EA_SECRET,
    "SIGNUP_SYNC_SOURCE_TEST_EB_WEBHOOK_SECRET": EB_SECRET,
    "SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET": POSH_SECRET,
}

# Vector Z1 / Z3 bodies, exactly as documented (no trailing newline).
Z1_BODY = (
    '{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},'
    '"event_ts":1717430400123}'
)
Z3_BODY = (
    '{"event":"webinar.registration_created","event_ts":1717430401000,"payload":{"account_id":'
    '"AbCdEfGhIjKlMnOpQrStUv","object":{"id":84512345678,"uuid":"Xy7q8JmXQ6KJ2y7f1c3kOw==",'
    '"registrant":{"id":"8CeUCKjUQXaGdYbNpw0Z5A","email":"ana.muller@example.com",'
    '"first_name":"Ana","last_name":"Müller","status":"approved"}}}}'
)
Z1_TS, Z3_TS = 1717430400, 1717430401


def zoom_config(base_url: str = "http://zoom.invalid", **extra: Any) -> dict[str, Any]:
    return {
        "base_url": f"{base_url}/v2",
        "token_url": f"{base_url}/oauth/token",
        "account_id": ACCOUNT_ID,
        "client_id_env": "SIGNUP_SYNC_SOURCE_TEST_ZOOM_CLIENT_ID",
        "client_secret_env": "SIGNUP_SYNC_SOURCE_TEST_ZOOM_CLIENT_SECRET",
        "user_ids": [HOST],
        "meeting_ids": [M1],
        "page_size": 2,
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_ZOOM_WEBHOOK_SECRET",
        **extra,
    }


def sign(body: bytes, timestamp: int, secret: str = ZOOM_SECRET) -> dict[str, str]:
    """Signed the way §2.6 documents it, computed here independently of the service."""
    digest = hmac.new(
        secret.encode(), b"v0:" + str(timestamp).encode() + b":" + body, hashlib.sha256
    )
    return {
        "x-zm-signature": "v0=" + digest.hexdigest(),
        "x-zm-request-timestamp": str(timestamp),
        "content-type": "application/json; charset=utf-8",
    }


async def post_zoom(
    client: httpx.AsyncClient, body: str | bytes, timestamp: int, path: str = "/webhooks/zoom"
) -> httpx.Response:
    raw = body.encode() if isinstance(body, str) else body
    return await client.post(path, content=raw, headers=sign(raw, timestamp))


async def deliveries(factory: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with factory() as session:
        found = await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return list(found.scalars().all())


async def events(factory: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with factory() as session:
        found = await session.execute(
            select(
                FunnelEvent.external_id,
                FunnelEvent.event_type,
                FunnelEvent.status,
                FunnelEvent.source_id,
            ).order_by(FunnelEvent.external_id, FunnelEvent.event_type)
        )
        return [tuple(r) for r in found.all()]
