"""Event tracking and conversion endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from signup_sync.api.deps import Uow
from signup_sync.api.ratelimit import RATE_LIMIT_RESPONSE, IngestLimit
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.conversions.schemas import ConversionIn, ConversionOut
from signup_sync.conversions.service import record_conversion
from signup_sync.errors import PayloadTooLarge
from signup_sync.events.batch import ingest_batch
from signup_sync.events.schemas import BatchIn, BatchOut, EventIn, EventOut, to_record
from signup_sync.events.service import ingest

router = APIRouter(
    route_class=RoleRoute,
    prefix="/funnel",
    tags=["funnel"],
    dependencies=[require_role(Role.INGEST), IngestLimit],
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not decodable (not UTF-8 / not JSON)"},
    401: {"description": "Missing or invalid bearer token"},
    413: {"description": "Body (or batch) too large"},
    422: {"description": "Invalid input; `errors` names each field and the reason"},
    503: {"description": "The database is unavailable"},
}
INGEST_ERRORS = {**ERRORS, **RATE_LIMIT_RESPONSE}


@router.post(
    "/event",
    response_model=EventOut,
    status_code=status.HTTP_201_CREATED,
    summary="Track one funnel event",
    responses={
        200: {
            "model": EventOut,
            "description": "Already stored (the original event), or the person was erased "
            "on request (`erased: true`, nothing stored)",
        },
        **INGEST_ERRORS,
    },
)
async def track_event(
    body: EventIn,
    uow: Uow,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="Repeat a request safely: the same key returns the original event",
        ),
    ] = None,
) -> EventOut:
    record = to_record(body, idempotency_key=idempotency_key or None)
    [outcome] = await uow(lambda session: ingest(session, [record]))
    duplicate = outcome.status == "duplicate"
    erased = outcome.status == "erased"
    if duplicate or erased:
        response.status_code = status.HTTP_200_OK
    if erased:
        message = "This person was erased at their request; nothing was stored"
    elif duplicate:
        message = "Event already recorded; nothing changed"
    else:
        message = "Event recorded"
    return EventOut(
        event_id=None if erased else outcome.event_id,
        lead_id=None if erased else outcome.lead_id,
        source_type=outcome.source_type,
        event_type=outcome.event_type,
        stage=outcome.stage,
        email=outcome.email,
        occurred_at=outcome.occurred_at,
        created_at=outcome.created_at,
        duplicate=duplicate,
        erased=erased,
        message=message,
    )


@router.post(
    "/events/batch",
    response_model=BatchOut,
    summary="Track up to 1,000 events in one transaction",
    responses=INGEST_ERRORS,
)
async def track_batch(body: BatchIn, uow: Uow, request: Request) -> BatchOut:
    limit = request.app.state.settings.max_batch_events
    if len(body.events) > limit:
        raise PayloadTooLarge(
            f"A batch holds at most {limit} events; this one has {len(body.events)}",
            field="events",
        )
    return await uow(lambda session: ingest_batch(session, body.events))


@router.post(
    "/conversion",
    response_model=ConversionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Mark a lead as converted and freeze its attribution",
    responses={
        200: {
            "model": ConversionOut,
            "description": "Already recorded (the stored conversion), or the person was "
            "erased on request (`erased: true`, nothing stored)",
        },
        **INGEST_ERRORS,
    },
)
async def track_conversion(body: ConversionIn, uow: Uow, response: Response) -> ConversionOut:
    result = await uow(lambda session: record_conversion(session, body))
    if result.duplicate or result.erased:
        response.status_code = status.HTTP_200_OK
    return result
