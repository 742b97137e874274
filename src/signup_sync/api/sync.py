"""Sync endpoints: ``POST /sync/{source_type}``, ``POST /sync/all``, ``GET /sync/status/...``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from signup_sync.api.deps import Authorized, Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.sync.schemas import SyncAccepted, SyncRequest, SyncResponse, SyncStatusOut
from signup_sync.sync.service import ALL, sync_sources, sync_status

router = APIRouter(prefix="/sync", tags=["sync"], dependencies=Authorized)

RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    202: {"model": SyncAccepted, "description": "`wait: false`: started in the background"},
    404: {"description": "Unknown source type (the body lists the valid ones) or source id"},
    409: {"description": "A sync of this source is already running (its `sync_log_id`)"},
}


async def _sync(
    request: Request, response: Response, source_type: str, body: SyncRequest | None
) -> SyncResponse | SyncAccepted:
    state = request.app.state
    result = await sync_sources(
        state.session_factory,
        source_type,
        body,
        settings=state.settings,
        background=state.sync.background,
    )
    if isinstance(result, SyncAccepted):
        response.status_code = status.HTTP_202_ACCEPTED
    return result


@router.post(
    "/all",
    response_model=SyncResponse | SyncAccepted,
    summary="Sync every active source; one failing does not stop the rest",
    responses=RESPONSES,
)
async def sync_all(
    request: Request, response: Response, body: SyncRequest | None = None
) -> SyncResponse | SyncAccepted:
    return await _sync(request, response, ALL, body)


@router.get(
    "/status/{source_type}",
    response_model=SyncStatusOut,
    summary="Last sync, running or not, success rate and the last 10 logs of each source",
    responses=RESPONSES,
)
async def get_status(source_type: str, request: Request, uow: Uow) -> SyncStatusOut:
    default = request.app.state.settings.sync_default_schedule
    return await uow.read(lambda s: sync_status(s, source_type, default_schedule=default))


@router.post(
    "/{source_type}",
    response_model=SyncResponse | SyncAccepted,
    summary="Sync every active source of a type (easyappointments, zoom, eventbrite, poshvip)",
    responses=RESPONSES,
)
async def sync_type(
    source_type: str, request: Request, response: Response, body: SyncRequest | None = None
) -> SyncResponse | SyncAccepted:
    return await _sync(request, response, source_type, body)
