"""Receiving a delivery: find its source, authenticate the sender, store it raw, acknowledge.

Nothing else happens before the answer (Zoom allows 3 seconds): one read of the source,
one insert, one commit. Processing is the worker's job (``webhooks.worker``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync import sources
from signup_sync.db.models import FunnelSource
from signup_sync.errors import Conflict, DomainError, InvalidInput, NotFound
from signup_sync.logs import get_logger
from signup_sync.sources.access import SourceAccess
from signup_sync.sources.base import SourceConfig
from signup_sync.sources.secrets import MissingSecret
from signup_sync.webhooks import repository as repo
from signup_sync.webhooks.schemas import WebhookAck, ZoomUrlValidation
from signup_sync.webhooks.verify import (
    VerificationError,
    body_hash,
    secret_matches,
    verify_zoom,
    zoom_url_validation,
)

log = get_logger("signup_sync.webhooks")

# The only request headers kept with a delivery (never a signature or a secret).
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "x-zm-request-timestamp",
    "x-zm-trackingid",
    "x-eventbrite-event",
    "x-eventbrite-delivery",
    "x-request-id",
)
POSH_SECRET_HEADER = "x-webhook-secret"  # noqa: S105 - a header name


class WebhookUnauthorized(DomainError):
    """The sender could not be authenticated (no ``WWW-Authenticate: Bearer``: not our token)."""

    status_code = 401
    code = "unauthorized"


@dataclass(frozen=True, slots=True)
class Incoming:
    source_type: str
    source_id: int | None
    raw_body: bytes
    headers: Mapping[str, str]  # lower-case names
    url_secret: str | None
    now: float  # epoch seconds
    max_age_seconds: float = 300.0
    access: SourceAccess | None = None  # None: the strict default (SourceAccess())


def _source(found: list[FunnelSource], incoming: Incoming) -> FunnelSource:
    kind = incoming.source_type
    if incoming.source_id is not None:
        if not found:
            raise NotFound(f"no active {kind} source with id {incoming.source_id}")
        return found[0]
    if not found:
        raise NotFound(f"no active {kind} source is configured")
    if len(found) > 1:
        raise Conflict(
            f"several active {kind} sources exist: post to /webhooks/{kind}/{{source_id}}"
        )
    return found[0]


def _config(source: FunnelSource) -> SourceConfig:
    connector = sources.REGISTRY[source.source_type]
    try:
        return connector.config_model.model_validate(source.config or {})
    except ValidationError:
        raise Conflict(
            f"source {source.id} has an invalid config; fix it with PATCH /sources/{source.id}"
        ) from None


def _secret(source: FunnelSource, config: SourceConfig, access: SourceAccess | None) -> str:
    secrets = (access or SourceAccess()).secrets(config, source.secret_values)
    try:
        value = secrets["webhook_secret"]
    except MissingSecret as exc:
        # Said in the log (for the operator), not to the caller.
        log.warning("webhook_secret_missing", source_id=source.id, problem=str(exc))
        raise WebhookUnauthorized(
            "webhooks are not enabled for this source (no webhook secret configured)"
        ) from None
    return value


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("the body is not valid JSON", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


def _authenticate(
    incoming: Incoming, config: SourceConfig, secret: str
) -> ZoomUrlValidation | None:
    """Raise WebhookUnauthorized unless the sender proved it knows the secret."""
    headers = incoming.headers
    kind = incoming.source_type
    if kind == "zoom":
        try:
            verify_zoom(
                secret,
                signature=headers.get("x-zm-signature"),
                timestamp=headers.get("x-zm-request-timestamp"),
                raw_body=incoming.raw_body,
                now=incoming.now,
                max_age_seconds=incoming.max_age_seconds,
            )
        except VerificationError as exc:
            raise WebhookUnauthorized(f"Zoom signature rejected: {exc}") from None
        body = _json_object(incoming.raw_body)
        if body.get("event") == "endpoint.url_validation":
            payload = body.get("payload")
            plain = payload.get("plainToken") if isinstance(payload, dict) else None
            if not isinstance(plain, str) or not 0 < len(plain) <= 256:
                raise InvalidInput("payload.plainToken is missing", field="payload.plainToken")
            return ZoomUrlValidation(**zoom_url_validation(secret, plain))
        return None
    if kind == "easyappointments":
        given = headers.get(str(getattr(config, "webhook_header", "X-Ea-Token")).lower())
    elif kind == "poshvip":
        given = headers.get(POSH_SECRET_HEADER) or incoming.url_secret
    else:  # eventbrite: it cannot send headers, the secret is in the URL
        given = incoming.url_secret
    if not secret_matches(secret, given):
        raise WebhookUnauthorized("missing or wrong webhook secret")
    return None


def _dedupe_key(kind: str, body: dict[str, Any], incoming: Incoming) -> str:
    digest = body_hash(incoming.raw_body)[:40]
    if kind == "zoom":
        return f"zoom:{body.get('event_ts')}:{digest}"[:200]
    delivery = incoming.headers.get("x-eventbrite-delivery")
    if kind == "eventbrite" and delivery and len(delivery) <= 100:
        return f"delivery:{delivery}"
    return f"body:{digest}"


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept = {}
    for name in KEPT_HEADERS:
        value = headers.get(name)
        if value:
            kept[name] = value.replace("\x00", "")[:200]
    return kept


async def receive(session: AsyncSession, incoming: Incoming) -> WebhookAck | ZoomUrlValidation:
    """Authenticate and store one delivery (the caller commits); the acknowledgement."""
    found = list(await repo.active_sources(session, incoming.source_type, incoming.source_id))
    source = _source(found, incoming)
    config = _config(source)
    answer = _authenticate(incoming, config, _secret(source, config, incoming.access))
    if answer is not None:
        return answer
    body = _json_object(incoming.raw_body)
    key = _dedupe_key(incoming.source_type, body, incoming)
    received = datetime.fromtimestamp(incoming.now, UTC)
    delivery_id = await repo.insert_delivery(
        session,
        {
            "source_type": incoming.source_type,
            "source_id": source.id,
            "received_at": received,
            "headers": _kept_headers(incoming.headers),
            "body": incoming.raw_body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": received,
            "dedupe_key": key,
        },
    )
    if delivery_id is None:
        existing = await repo.find_delivery_id(session, incoming.source_type, source.id, key)
        log.info("webhook_duplicate", source_id=source.id, delivery_id=existing)
        return WebhookAck(status="duplicate", delivery_id=existing or 0)
    log.info("webhook_stored", source_id=source.id, delivery_id=delivery_id)
    return WebhookAck(status="accepted", delivery_id=delivery_id)
