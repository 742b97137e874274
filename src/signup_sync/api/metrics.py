"""GET /metrics: Prometheus text format, behind METRICS_TOKEN (or the service token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from signup_sync.api.deps import Uow, token_matches
from signup_sync.errors import Unauthorized
from signup_sync.exposition import render

router = APIRouter(tags=["operations"])

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="METRICS_TOKEN, or a SIGNUP_SYNC_SERVICE_TOKEN (the only choice when unset)",
)

EXAMPLE = """\
# HELP signup_sync_http_requests_total HTTP requests answered, by method, route template and status
# TYPE signup_sync_http_requests_total counter
signup_sync_http_requests_total{method="POST",route="/funnel/event",status="201"} 42.0
# HELP signup_sync_source_last_success_age_seconds Seconds since the source's last successful sync
# TYPE signup_sync_source_last_success_age_seconds gauge
signup_sync_source_last_success_age_seconds{source_id="1",source_type="eventbrite"} 3600.0
"""


async def require_metrics_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Secure by default: with no METRICS_TOKEN set, the service token(s) are required."""
    if credentials is None:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <METRICS_TOKEN>'")
    allowed = [*request.app.state.metrics_tokens, *request.app.state.tokens]
    if not token_matches(credentials.credentials, allowed):
        raise Unauthorized("Invalid bearer token")


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    description=(
        "Request counts and latency per route template and status, events ingested, "
        "duplicates absorbed, sync runs, durations and records, webhook deliveries, database "
        "connections in use, and the age of each source's last successful sync. Needs "
        "`METRICS_TOKEN` when set, else a service token. See docs/operations.md."
    ),
    dependencies=[Depends(require_metrics_token)],
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in the Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}},
        },
        401: {"description": "Missing or invalid bearer token"},
    },
)
async def metrics(uow: Uow) -> Response:
    body = await uow.read(render)
    return Response(content=body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
