"""Webhook receivers (``POST /webhooks/{type}[/{source_id}]``) and the inbox (``/webhooks/inbox``).

The receivers are not behind a bearer token: each sender proves itself its own way (see
docs/webhooks.md), and that proof is checked before the body is parsed, so an unsigned or
wrongly signed delivery is a 401 whatever it carries. They store the delivery and answer at
once; the worker processes. The inbox needs a full-access token.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel

from signup_sync import metrics
from signup_sync.api.deps import MAX_ID, SourceId, Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.errors import DomainError
from signup_sync.webhooks.receive import Incoming, receive
from signup_sync.webhooks.schemas import (
    DeliveryOut,
    DeliveryStatus,
    EasyAppointmentsWebhookBody,
    EventbriteWebhookBody,
    PoshRelayBody,
    WebhookAck,
    ZoomUrlValidation,
    ZoomWebhookBody,
)
from signup_sync.webhooks.service import list_inbox, replay

router = APIRouter(
    prefix="/webhooks", tags=["webhooks"], dependencies=[require_role(Role.WEBHOOK_SIGNATURE)]
)
inbox = APIRouter(
    route_class=RoleRoute,
    prefix="/webhooks/inbox",
    tags=["webhooks"],
    dependencies=[require_role(Role.FULL)],
)

RECEIVER_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in ERRORS.items() if k != 401},
    401: {"description": "Wrong or missing signature / webhook secret: nothing stored"},
    404: {"description": "No such active source of this type"},
    409: {"description": "Several active sources of this type: post to /webhooks/{type}/{id}"},
}
BODY_MODELS: tuple[type[BaseModel], ...] = (
    ZoomWebhookBody,
    EventbriteWebhookBody,
    EasyAppointmentsWebhookBody,
    PoshRelayBody,
)


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The documented body: read raw by the receiver (after the sender is authenticated)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def install_webhook_docs(app: FastAPI) -> None:
    """Add the receivers' body schemas to the OpenAPI document (no FastAPI body parameter)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        spec = base()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in BODY_MODELS:
            schemas.setdefault(model.__name__, model.model_json_schema())
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


UrlSecret = Annotated[
    str | None,
    Query(max_length=256, description="the source's webhook secret (its webhook_secret_env)"),
]


async def _receive(
    request: Request, uow: Uow, source_type: str, source_id: int | None, secret: str | None
) -> WebhookAck | ZoomUrlValidation:
    state = request.app.state
    clock = getattr(state, "clock", time.time)
    incoming = Incoming(
        source_type=source_type,
        source_id=source_id,
        raw_body=await request.body(),
        headers=dict(request.headers),
        url_secret=secret,
        now=float(clock()),
        max_age_seconds=state.settings.webhook_max_age_seconds,
        access=state.source_access,
    )
    try:
        answer = await uow(lambda s: receive(s, incoming))
    except DomainError as exc:  # refused: unauthorized, unknown source, bad body
        metrics.WEBHOOK_DELIVERIES.labels(source_type, exc.code).inc()
        raise
    outcome = answer.status if isinstance(answer, WebhookAck) else "url_validation"
    metrics.WEBHOOK_DELIVERIES.labels(source_type, outcome).inc()
    worker = getattr(state, "webhook_worker", None)
    if worker is not None and isinstance(answer, WebhookAck) and answer.status == "accepted":
        worker.wake()
    return answer


# ---- Zoom ----------------------------------------------------------------------------------

ZOOM_DOC = "Zoom webhook (x-zm-signature checked); answers the endpoint.url_validation challenge"


@router.post(
    "/zoom",
    response_model=WebhookAck | ZoomUrlValidation,
    summary=ZOOM_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(ZoomWebhookBody),
)
async def zoom_hook(request: Request, uow: Uow) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "zoom", None, None)


@router.post(
    "/zoom/{source_id}",
    response_model=WebhookAck | ZoomUrlValidation,
    summary=ZOOM_DOC + " (one of several Zoom sources)",
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(ZoomWebhookBody),
)
async def zoom_source_hook(
    source_id: SourceId, request: Request, uow: Uow
) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "zoom", source_id, None)


# ---- Eventbrite ----------------------------------------------------------------------------

EB_DOC = "Eventbrite notification (?secret=...); the worker fetches its api_url"


@router.post(
    "/eventbrite",
    response_model=WebhookAck,
    summary=EB_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(EventbriteWebhookBody),
)
async def eventbrite_hook(
    request: Request, uow: Uow, secret: UrlSecret = None
) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "eventbrite", None, secret)


@router.post(
    "/eventbrite/{source_id}",
    response_model=WebhookAck,
    summary=EB_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(EventbriteWebhookBody),
)
async def eventbrite_source_hook(
    source_id: SourceId,
    request: Request,
    uow: Uow,
    secret: UrlSecret = None,
) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "eventbrite", source_id, secret)


# ---- EasyAppointments ----------------------------------------------------------------------

EA_DOC = "EasyAppointments webhook (secret header, X-Ea-Token by default)"


@router.post(
    "/easyappointments",
    response_model=WebhookAck,
    summary=EA_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(EasyAppointmentsWebhookBody),
)
async def easyappointments_hook(request: Request, uow: Uow) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "easyappointments", None, None)


@router.post(
    "/easyappointments/{source_id}",
    response_model=WebhookAck,
    summary=EA_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(EasyAppointmentsWebhookBody),
)
async def easyappointments_source_hook(
    source_id: SourceId, request: Request, uow: Uow
) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "easyappointments", source_id, None)


# ---- Posh.VIP ------------------------------------------------------------------------------

POSH_DOC = "Posh.VIP order relayed by an automation tool (X-Webhook-Secret or ?secret=)"


@router.post(
    "/poshvip",
    response_model=WebhookAck,
    summary=POSH_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(PoshRelayBody),
)
async def poshvip_hook(
    request: Request, uow: Uow, secret: UrlSecret = None
) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "poshvip", None, secret)


@router.post(
    "/poshvip/{source_id}",
    response_model=WebhookAck,
    summary=POSH_DOC,
    responses=RECEIVER_ERRORS,
    openapi_extra=_body(PoshRelayBody),
)
async def poshvip_source_hook(
    source_id: SourceId, request: Request, uow: Uow, secret: UrlSecret = None
) -> WebhookAck | ZoomUrlValidation:
    return await _receive(request, uow, "poshvip", source_id, secret)


# ---- the inbox (full access) ---------------------------------------------------------------


@inbox.get(
    "",
    response_model=list[DeliveryOut],
    summary="Webhook deliveries, newest first (e.g. ?status=failed or parked)",
    responses=ERRORS,
)
async def get_inbox(
    uow: Uow,
    status: Annotated[DeliveryStatus | None, Query(description="only this status")] = None,
    source_type: Annotated[str | None, Query(max_length=32, description="only this type")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="page: deliveries older than this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryOut]:
    return await uow.read(
        lambda s: list_inbox(
            s, status=status, source_type=source_type, before_id=before_id, limit=limit
        )
    )


@inbox.post(
    "/{delivery_id}/replay",
    response_model=DeliveryOut,
    summary="Process a failed, parked (or done) delivery again",
    responses={
        **ERRORS,
        404: {"description": "No such delivery"},
        409: {"description": "The delivery is pending or being processed"},
    },
)
async def replay_delivery(
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ID, description="delivery id")],
    request: Request,
    uow: Uow,
) -> DeliveryOut:
    out = await uow(lambda s: replay(s, delivery_id))
    worker = getattr(request.app.state, "webhook_worker", None)
    if worker is not None:
        worker.wake()
    return out
