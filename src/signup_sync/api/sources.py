"""Source configuration endpoints: ``GET/POST/PATCH/DELETE /sources``, ``POST .../check``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from signup_sync.api.deps import SourceId, Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.sources.access import SourceAccess
from signup_sync.sync.check import SourceCheck, load_target, run_check
from signup_sync.sync.schemas import SourceIn, SourceOut, SourcePatch
from signup_sync.sync.sources_service import (
    create_source,
    deactivate_source,
    get_source,
    list_sources,
    update_source,
)
from signup_sync.vocabulary import SourceType

router = APIRouter(
    route_class=RoleRoute,
    prefix="/sources",
    tags=["sources"],
    dependencies=[require_role(Role.FULL)],
)


def _access(request: Request) -> SourceAccess:
    access: SourceAccess = request.app.state.source_access
    return access


RESPONSES = {**ERRORS, 404: {"description": "No such source"}, 409: {"description": "Name taken"}}


@router.get("", response_model=list[SourceOut], summary="List configured sources")
async def get_sources(
    request: Request,
    uow: Uow,
    source_type: Annotated[SourceType | None, Query(description="only this type")] = None,
    active: Annotated[bool | None, Query(description="only active (true) or inactive")] = None,
) -> list[SourceOut]:
    kind = source_type.value if source_type else None
    access = _access(request)
    return await uow.read(lambda s: list_sources(s, source_type=kind, active=active, access=access))


@router.post(
    "",
    response_model=SourceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Configure a source (secrets: *_env variable names, or values in `secrets`)",
    responses=RESPONSES,
)
async def post_source(body: SourceIn, uow: Uow, request: Request) -> SourceOut:
    access = _access(request)
    return await uow(lambda s: create_source(s, body, access))


@router.get("/{source_id}", response_model=SourceOut, responses=RESPONSES)
async def get_one(source_id: SourceId, uow: Uow, request: Request) -> SourceOut:
    access = _access(request)
    return await uow.read(lambda s: get_source(s, source_id, access))


@router.patch(
    "/{source_id}",
    response_model=SourceOut,
    summary="Change a source; config is merged key by key (null removes a key)",
    responses=RESPONSES,
)
async def patch_source(
    source_id: SourceId, body: SourcePatch, uow: Uow, request: Request
) -> SourceOut:
    access = _access(request)
    return await uow(lambda s: update_source(s, source_id, body, access))


@router.delete(
    "/{source_id}",
    response_model=SourceOut,
    summary="Deactivate a source (its history is kept; PATCH is_active=true restores it)",
    responses=RESPONSES,
)
async def delete_source(source_id: SourceId, uow: Uow, request: Request) -> SourceOut:
    access = _access(request)
    return await uow(lambda s: deactivate_source(s, source_id, access))


@router.post(
    "/{source_id}/check",
    response_model=SourceCheck,
    summary="Check a source: config, every secret, addresses, authenticate, read one page",
    description="Writes nothing (no sync log, no cursor, no events). `ok` is false when any "
    "check fails; `missing_secrets` names every variable that is not set, all at once. "
    "A Posh.VIP source that reads uploaded exports says so instead of reading.",
    responses=RESPONSES,
)
async def check_source(source_id: SourceId, uow: Uow, request: Request) -> SourceCheck:
    target = await uow.read(lambda s: load_target(s, source_id))
    return await run_check(target, _access(request))
