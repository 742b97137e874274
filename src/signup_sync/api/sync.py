"""Sync endpoints: ``POST /sync/{source_type}``, ``POST /sync/all``, ``GET /sync/status/...``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from signup_sync.api.deps import Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.errors import InvalidInput
from signup_sync.sync.schemas import SyncAccepted, SyncRequest, SyncResponse, SyncStatusOut
from signup_sync.sync.service import ALL, sync_sources, sync_status

router = APIRouter(
    route_class=RoleRoute, prefix="/sync", tags=["sync"], dependencies=[require_role(Role.FULL)]
)

STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"description": "Unknown source type (the body lists the valid ones)"},
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    202: {"model": SyncAccepted, "description": "`wait: false`: started in the background"},
    404: {"description": "Unknown source type (the body lists the valid ones) or source id"},
    409: {"description": "A sync of this source is already running (its `sync_log_id`)"},
}


_OPTION_FIELDS = {
    name: {"type": "string", "description": str(field.description)}
    for name, field in SyncRequest.model_fields.items()
}
_CSV_EXAMPLE = (
    "order_number,event_name,event_date,first_name,last_name,email,order_status,purchased_at\n"
    "PSH-10482,Rooftop Fridays,2026-06-21 22:00,Ana,Müller,ana@example.com,approved,"
    "2026-06-18 19:42\n"
)
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SyncRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        **_OPTION_FIELDS,
                    },
                },
                "example": {"file": _CSV_EXAMPLE, "dry_run": "true"},
            },
            "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
        },
    }
}


_BOOL_OPTIONS = [n for n, f in SyncRequest.model_fields.items() if f.annotation in (bool, "bool")]


def _json_options(raw: dict[str, Any]) -> SyncRequest:
    # JSON carries real booleans; form fields and query strings spell them "true"/"false".
    errors = [
        {"type": "bool_type", "loc": ("body", name), "msg": "must be true or false", "input": None}
        for name in _BOOL_OPTIONS
        if name in raw and not isinstance(raw[name], bool)
    ]
    if errors:
        raise RequestValidationError(errors)
    return _options(raw)


def _options(raw: dict[str, Any], where: str = "body") -> SyncRequest:
    try:
        return SyncRequest.model_validate(raw)
    except ValidationError as exc:
        # Rendered like any request validation error: 422, errors[].field = the option.
        errors = [{**e, "loc": (where, *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def _read(request: Request) -> tuple[SyncRequest | None, bytes | None]:
    """Options and the uploaded file: JSON options; multipart (part ``file`` + option
    fields); or a ``text/csv`` body (options in the query string)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form()
        except HTTPException as exc:  # a body that is not the multipart it claims to be
            raise InvalidInput(f"Unreadable multipart body: {exc.detail}", field="file") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput(
                    "A multipart sync needs a 'file' part (the export)", field="file"
                )
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            return _options(fields), await upload.read()
        finally:
            await form.close()
    if kind in ("text/csv", "text/plain"):
        return _options(dict(request.query_params), "query"), await request.body()
    body = await request.body()
    if not body.strip():
        return None, None
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("The body is not valid JSON", field="body") from None
    if not isinstance(raw, dict):
        raise InvalidInput("The body must be a JSON object", field="body")
    return _json_options(raw), None


async def _sync(
    request: Request,
    response: Response,
    source_type: str,
    body: SyncRequest | None,
    upload: bytes | None = None,
) -> SyncResponse | SyncAccepted:
    state = request.app.state
    result = await sync_sources(
        state.session_factory,
        source_type,
        body,
        settings=state.settings,
        background=state.sync.background,
        upload=upload,
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
    responses=STATUS_RESPONSES,
)
async def get_status(source_type: str, request: Request, uow: Uow) -> SyncStatusOut:
    default = request.app.state.settings.sync_default_schedule
    return await uow.read(lambda s: sync_status(s, source_type, default_schedule=default))


@router.post(
    "/{source_type}",
    response_model=SyncResponse | SyncAccepted,
    summary="Sync every active source of a type (easyappointments, zoom, eventbrite, poshvip)",
    description=(
        "Options as a JSON body (`SyncRequest`). A type that reads an export file (poshvip) "
        "also takes the file: `multipart/form-data` with part `file` (options as form fields) "
        "or a `text/csv` body (options in the query string, e.g. `?source_id=3`). Without a "
        "file, a poshvip source syncs from its configured `file_path`/`file_url`; one with "
        "neither is a 422 naming `file`. The body limit is `MAX_BODY_BYTES`."
    ),
    openapi_extra=_BODY_DOC,
    responses={**RESPONSES, 413: {"description": "Upload larger than MAX_BODY_BYTES"}},
)
async def sync_type(
    source_type: str, request: Request, response: Response
) -> SyncResponse | SyncAccepted:
    body, upload = await _read(request)
    return await _sync(request, response, source_type, body, upload)
