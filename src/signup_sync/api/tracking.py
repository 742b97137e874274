"""The Segment/RudderStack-compatible tracking API (``/v1/*``, write-key auth) and its stats.

Status codes are what the Segment and Rudder clients act on: exactly 200 when stored (the
Rudder client treats any other 2xx as a failure), 400/401/403/413 when resending cannot help,
429 and 503 (with Retry-After) only when it can. analytics.js's short paths, per-key CORS and
the browser rate limit: api.tracking_browser and api.tracking_guard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from signup_sync.api.deps import Uow
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.api.tracking_guard import admit
from signup_sync.db.types import utcnow
from signup_sync.settings import Settings
from signup_sync.tracking.config import TrackingConfig, WriteKey
from signup_sync.tracking.decode import (
    WriteKeyRejected,
    basic_user,
    decompress,
    parse_json_object,
)
from signup_sync.tracking.intake import read_batch, read_single
from signup_sync.tracking.schemas import (
    AliasMessage,
    GroupMessage,
    IdentifyMessage,
    PageMessage,
    ScreenMessage,
    SegmentBatch,
    TrackingOut,
    TrackingStats,
    TrackMessage,
)
from signup_sync.tracking.service import receive, stats

router = APIRouter(
    prefix="/v1", tags=["tracking (Segment spec)"], dependencies=[require_role(Role.WRITE_KEY)]
)
stats_router = APIRouter(
    route_class=RoleRoute,
    prefix="/tracking",
    tags=["tracking (Segment spec)"],
    dependencies=[require_role(Role.READ)],
)

BODY_MODELS: dict[str, type[BaseModel]] = {
    "batch": SegmentBatch,
    "track": TrackMessage,
    "identify": IdentifyMessage,
    "page": PageMessage,
    "alias": AliasMessage,
    "group": GroupMessage,
    "screen": ScreenMessage,
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body or message; `detail` and `errors` say why"},
    401: {"description": "Missing or unknown write key (the Basic-auth user name)"},
    403: {"description": "A browser call from an origin this write key does not allow"},
    413: {"description": "Body (also once decompressed) or batch too large"},
    429: {
        "description": "A public key's browser rate limit; retry after Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    503: {"description": "The database is unavailable; retry after Retry-After"},
}


def openapi_body(kind: str) -> dict[str, Any]:
    """The documented request body and write-key security of a /v1 operation."""
    schema = {"$ref": f"#/components/schemas/{BODY_MODELS[kind].__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
            "description": "JSON (also sent as text/plain by browsers), optionally with "
            "Content-Encoding: gzip",
        },
        "security": [{"writeKey": []}],
    }


def _write_key(config: TrackingConfig, given: str | None) -> WriteKey:
    if given is None:
        raise WriteKeyRejected(
            "Missing write key: send it as the Basic-auth user name (password empty)"
        )
    found = config.match_key(given)
    if found is None:
        if not config.keys:
            raise WriteKeyRejected("The tracking API has no write keys; set SEGMENT_WRITE_KEYS")
        raise WriteKeyRejected("Unknown write key")
    return found


async def handle(request: Request, uow: Uow, kind: str) -> TrackingOut:
    """One /v1 request of any kind (long or short path): key, origin, limit, parse, store."""
    settings: Settings = request.app.state.settings
    config: TrackingConfig = request.app.state.tracking
    header_key = basic_user(request.headers.get("authorization"))
    key = _write_key(config, header_key) if header_key is not None else None
    body = decompress(
        await request.body(), request.headers.get("content-encoding"), settings.max_body_bytes
    )
    data = parse_json_object(body)
    if key is None:  # the spec also allows the write key in the body
        given = data.get("writeKey")
        key = _write_key(config, given if isinstance(given, str) else None)
    await admit(request, config, key)  # before parsing: a refused call stores nothing
    received_at = utcnow()
    if kind == "batch":
        messages, rejected = read_batch(data, config, received_at, settings.max_batch_events)
    else:
        messages, rejected = [read_single(kind, data, config, received_at)], []
    out = await uow(lambda session: receive(session, key, messages, received_at))
    out.received += len(rejected)
    out.rejected = rejected
    return out


def _post(kind: str, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    return router.post(
        f"/{kind}",
        response_model=TrackingOut,
        summary=summary,
        responses=ERRORS,
        openapi_extra=openapi_body(kind),
    )


@_post("batch", "Segment batch: many messages of any type")
async def batch(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "batch")


@_post("track", "Segment track: an event; mapped names become funnel events")
async def track(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "track")


@_post("identify", "Segment identify: ties an anonymous/user id to an email")
async def identify(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "identify")


@_post("page", "Segment page: a landing page view (UTMs, click id, outside referrer)")
async def page(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "page")


@_post("alias", "Segment alias: merges previousId into userId")
async def alias(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "alias")


@_post("group", "Segment group: stored as a message (no funnel effect)")
async def group(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "group")


@_post("screen", "Segment screen: like page, for apps")
async def screen(request: Request, uow: Uow) -> TrackingOut:
    return await handle(request, uow, "screen")


@stats_router.get(
    "/stats",
    response_model=TrackingStats,
    summary="Tracking API counts: by status, type, write key; unmapped track names",
)
async def tracking_stats(uow: Uow) -> TrackingStats:
    return await uow.read(stats)


def install_tracking_docs(app: FastAPI) -> None:
    """Add the request-body schemas and the write-key security scheme to the OpenAPI doc."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        spec = base()
        components = spec.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in BODY_MODELS.values():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        components.setdefault("securitySchemes", {})["writeKey"] = {
            "type": "http",
            "scheme": "basic",
            "description": "the write key as the user name, empty password (SEGMENT_WRITE_KEYS)",
        }
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
