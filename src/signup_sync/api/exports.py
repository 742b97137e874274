"""CSV downloads: GET /export/leads.csv, /export/events.csv, /export/conversions.csv."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from signup_sync.api.funnel import ERRORS
from signup_sync.api.leads import Filters
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.exports.service import HEADERS, ExportKind, csv_chunks
from signup_sync.leads.schemas import LeadFilter

router = APIRouter(
    route_class=RoleRoute, prefix="/export", tags=["export"], dependencies=[require_role(Role.READ)]
)

# One made-up person, by column name; each kind's example is its real header and one row.
_SAMPLE = {
    "id": "31",
    "lead_id": "7",
    "email": "ana@example.com",
    "phone": "+13055550188",
    "first_name": "Ana",
    "last_name": "Müller",
    "company": "Rooftop Events",
    "stage": "2",
    "stage_name": "engaged",
    "first_seen_at": "2026-06-01T10:00:00+00:00",
    "last_seen_at": "2026-06-03T18:30:00+00:00",
    "first_touch_source_type": "zoom",
    "first_touch_utm_source": "newsletter",
    "first_touch_utm_medium": "email",
    "first_touch_utm_campaign": "june-webinar",
    "converted_at": "2026-06-20T09:15:00+00:00",
    "source_type": "zoom",
    "event_type": "webinar_registered",
    "status": "active",
    "occurred_at": "2026-06-01T10:00:00+00:00",
    "external_id": "webinar:845:registrant:8CeU",
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "june-webinar",
    "created_at": "2026-06-01T10:00:02+00:00",
    "user_id": "user_123",
    "conversion_type": "signup",
    "value": "49.00",
    "currency": "USD",
    "lookback_days": "90",
    "first_touch_at": "2026-06-01T10:00:00+00:00",
    "last_touch_source_type": "eventbrite",
    "last_touch_at": "2026-06-14T20:00:00+00:00",
    "days_to_conversion": "18",
    "total_touchpoints": "3",
}


def _csv_example(kind: ExportKind) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADERS[kind])
    writer.writerow([_SAMPLE.get(name, "") for name in HEADERS[kind]])
    return out.getvalue()


_CSV_EXAMPLES: dict[str, Any] = {
    kind.value: {"summary": f"{kind.value}.csv", "value": _csv_example(kind)} for kind in ExportKind
}


@router.get(
    "/{kind}.csv",
    summary="Leads, their events or their conversions as CSV (same filters as GET /leads)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The CSV file (UTF-8, a header row, one row per record)",
            "content": {"text/csv": {"schema": {"type": "string"}, "examples": _CSV_EXAMPLES}},
        },
        **ERRORS,
    },
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
