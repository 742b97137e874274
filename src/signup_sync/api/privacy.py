"""Erasure on request: ``POST /privacy/erase`` (``DELETE /leads/{id}`` lives with the leads)."""

from __future__ import annotations

from fastapi import APIRouter

from signup_sync.api.deps import Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.privacy.schemas import ErasureIn, ErasureOut
from signup_sync.privacy.service import erase, settle_files

router = APIRouter(
    route_class=RoleRoute,
    prefix="/privacy",
    tags=["privacy"],
    dependencies=[require_role(Role.FULL)],
)


@router.post(
    "/erase",
    response_model=ErasureOut,
    summary="Erase a person by email and/or phone, and refuse their future records",
    description=(
        "Deletes the person's lead with its events and conversions, and stores a tombstone: "
        "an HMAC-SHA256 of each identifier (never the identifier). From then on, records of "
        "this person from any source are not stored: syncs count them as `skipped: erased`, "
        "the event endpoints answer 200 with `erased: true`. Repeating an erasure is harmless. "
        "See docs/privacy.md."
    ),
    responses=ERRORS,
)
async def erase_person(body: ErasureIn, uow: Uow) -> ErasureOut:
    out = await uow(lambda session: erase(session, body))
    await uow.read(settle_files)
    return out
