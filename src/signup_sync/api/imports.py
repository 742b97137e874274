"""CSV import endpoint: ``POST /import/csv`` (multipart upload or a text/csv body)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from signup_sync.api.deps import Uow
from signup_sync.api.ratelimit import RATE_LIMIT_RESPONSE, IngestLimit
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.errors import InvalidInput
from signup_sync.imports.schemas import ImportOut
from signup_sync.imports.service import import_csv, parse_options

router = APIRouter(
    route_class=RoleRoute,
    prefix="/import",
    tags=["import"],
    dependencies=[require_role(Role.INGEST), IngestLimit],
)

OPTION_NAMES = ("source_type", "event_type", "columns", "timezone", "default_region", "date_format")

_CSV_EXAMPLE = "Email,First Name,Last Name,Date\nana@example.com,Ana,Müller,2026-06-01\n"
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        **{name: {"type": "string"} for name in OPTION_NAMES},
                    },
                },
                "example": {
                    "file": _CSV_EXAMPLE,
                    "source_type": "manual",
                    "columns": '{"Email": "email", "Date": "occurred_at"}',
                },
            },
        },
    }
}


async def _read_body(request: Request) -> tuple[bytes, dict[str, str]]:
    """The CSV bytes and any form fields (options may come as form fields or query)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.body(), {}
    async with request.form() as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("A multipart upload needs a 'file' part with the CSV", field="file")
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return await upload.read(), fields


@router.post(
    "/csv",
    response_model=ImportOut,
    summary="Import funnel events from a CSV file, with per-row results",
    description=(
        "Send the file as `multipart/form-data` (part `file`) or as a `text/csv` body. "
        "Each row becomes one event of `source_type` (default event type per source: manual "
        "-> lead_captured, referral -> referral_received, direct_signup -> signup_completed). "
        "Headers such as Email, E-mail, First Name, Last Name, Phone, Company, Date, utm_* "
        "are recognised; `columns` maps others. A row needs an email or a phone. Re-importing "
        "the same rows adds nothing (external id from the id column, else a content hash)."
    ),
    openapi_extra=_BODY_DOC,
    responses={
        401: {"description": "Missing or invalid bearer token"},
        413: {"description": "File larger than MAX_BODY_BYTES"},
        422: {"description": "Not a CSV we can read, no email/phone column, or a bad option"},
        **RATE_LIMIT_RESPONSE,
    },
)
async def import_csv_file(
    request: Request,
    uow: Uow,
    source_type: Annotated[str | None, Query(description="manual, referral, ...")] = None,
    event_type: Annotated[str | None, Query(description="default per source type")] = None,
    columns: Annotated[str | None, Query(description='JSON {"header": "field"}')] = None,
    timezone: Annotated[str | None, Query(description="zone of offset-less dates")] = None,
    default_region: Annotated[str | None, Query(description="phone country")] = None,
    date_format: Annotated[str | None, Query(description="strptime format")] = None,
) -> ImportOut:
    data, form = await _read_body(request)
    query = {
        "source_type": source_type,
        "event_type": event_type,
        "columns": columns,
        "timezone": timezone,
        "default_region": default_region,
        "date_format": date_format,
    }
    raw = {k: v for k, v in query.items() if v is not None}
    raw.update({k: v for k, v in form.items() if k in OPTION_NAMES})
    options = parse_options(raw)
    return await uow(lambda session: import_csv(session, data, options))
