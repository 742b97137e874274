"""The browser side of the tracking API: analytics.js short paths and per-key CORS on ``/v1``.

analytics-next (``@segment/analytics-next``) posts each call to ``{apiHost}/p|i|t|a|g`` (and
``/b`` with ``{"writeKey", "batch", "sentAt"}`` in its batching strategy) as ``text/plain``
JSON with ``Authorization: Basic base64(writeKey:)`` and, on retries, ``X-Retry-Count``; its
remote metrics go to ``{apiHost}/m``. Every short path runs the long form's handler.

CORS on ``/v1`` is per write key and is answered here, never by the global CORSMiddleware
(``CORS_ORIGINS``, which ``ApiCORSMiddleware`` keeps off ``/v1``). A preflight carries no
credentials, so it is allowed when any key allows the origin; the call itself is then checked
against its own key (``tracking_guard.admit``). Actual responses carry
``Access-Control-Allow-Origin`` for any origin so that the SDK can read the status it acts on
(a 403 or 400 is dropped, a 429's ``Retry-After`` honoured, which it cannot see otherwise):
the bodies hold only counts of what the caller sent, and no cookie or token is involved.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signup_sync.api.deps import Uow
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.api.tracking import ERRORS, handle, openapi_body
from signup_sync.settings import Settings
from signup_sync.tracking.config import TrackingConfig
from signup_sync.tracking.schemas import TrackingOut
from signup_sync.tracking.throttle import Limits

PREFIX = "/v1/"
ALLOWED_HEADERS = "authorization, content-type, content-encoding, x-retry-count, anonymousid"
EXPOSED_HEADERS = "Retry-After, X-Request-ID"
MAX_AGE = "86400"  # browsers cap it (Chromium: 2 h); the longest any of them keeps

router = APIRouter(
    prefix="/v1",
    tags=["tracking (Segment spec)"],
    dependencies=[require_role(Role.WRITE_KEY)],
    route_class=RoleRoute,
)
# The SDK's own telemetry carries no write key: taken from anyone and thrown away.
telemetry = APIRouter(
    prefix="/v1", tags=["tracking (Segment spec)"], dependencies=[require_role(Role.PUBLIC)]
)

SHORT_PATHS = {
    "p": "page",
    "i": "identify",
    "t": "track",
    "a": "alias",
    "g": "group",
    "s": "screen",
    "b": "batch",
}


def _short(path: str, kind: str) -> None:
    async def endpoint(request: Request, uow: Uow) -> TrackingOut:
        return await handle(request, uow, kind)

    endpoint.__name__ = f"short_{kind}"
    router.add_api_route(
        f"/{path}",
        endpoint,
        methods=["POST"],
        response_model=TrackingOut,
        summary=f"/v1/{kind} under analytics.js's short path",
        responses=ERRORS,
        openapi_extra=openapi_body(kind),
    )


for _path, _kind in SHORT_PATHS.items():
    _short(_path, _kind)


@telemetry.post(
    "/m",
    summary="analytics.js's own telemetry: accepted and discarded (nothing is stored)",
    responses={
        200: {"content": {"application/json": {"example": {"success": True}}}},
    },
)
async def sdk_metrics() -> JSONResponse:
    return JSONResponse({"success": True})


class TrackingCorsMiddleware:
    """Preflights and response headers of ``/v1`` browser calls (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin_raw = headers.get(b"origin")
        if origin_raw is None:
            await self.app(scope, receive, send)
            return
        origin = origin_raw.decode("latin-1")
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await self._preflight(scope, origin, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin_raw),
                    (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, scope: Scope, origin: str, send: Send) -> None:
        config: TrackingConfig = scope["app"].state.tracking
        if config.any_key_allows(origin):
            response: Response = Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE,
                    "Vary": "Origin",
                },
            )
        else:  # no Allow-Origin: the browser does not send the call
            response = JSONResponse(
                {
                    "error": "origin_not_allowed",
                    "detail": "No write key allows this origin",
                    "errors": [{"field": "Origin", "message": "not allowed by any write key"}],
                },
                status_code=403,
                headers={"Vary": "Origin"},
            )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class ApiCORSMiddleware(CORSMiddleware):
    """The global CORS of ``CORS_ORIGINS`` for everything but ``/v1`` (per key, above)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def install_browser_tracking(app: FastAPI, settings: Settings) -> None:
    """Short paths, per-key CORS and the browser rate limit (call before adding CORS)."""
    app.state.tracking_limits = Limits(
        per_key=settings.tracking_rate_limit_per_key,
        per_address=settings.tracking_rate_limit_per_address,
    )
    app.add_middleware(TrackingCorsMiddleware)
    app.include_router(router)
    app.include_router(telemetry)
