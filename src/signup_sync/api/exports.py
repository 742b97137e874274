"""CSV downloads: GET /export/leads.csv, /export/events.csv, /export/conversions.csv."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from signup_sync.api.funnel import ERRORS
from signup_sync.api.leads import Filters
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.exports.service import ExportKind, csv_chunks
from signup_sync.leads.schemas import LeadFilter

router = APIRouter(
    route_class=RoleRoute, prefix="/export", tags=["export"], dependencies=[require_role(Role.READ)]
)


@router.get(
    "/{kind}.csv",
    summary="Leads, their events or their conversions as CSV (same filters as GET /leads)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **ERRORS},
)
async def export_csv(
    request: Request,
    filters: Filters,
    kind: Annotated[ExportKind, Path(description="what to export")],
) -> StreamingResponse:
    return csv_response(request, kind, filters)


def csv_response(request: Request, kind: ExportKind, filters: LeadFilter) -> StreamingResponse:
    """The download, streamed; also served to the dashboard's signed-in browsers."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        csv_chunks(request.app.state.session_factory, kind, filters),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{kind.value}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
