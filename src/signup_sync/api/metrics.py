"""GET /metrics: Prometheus text format, behind METRICS_TOKEN (or a full-access token)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from signup_sync.api.deps import Uow
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.exposition import render

router = APIRouter(
    route_class=RoleRoute, tags=["operations"], dependencies=[require_role(Role.METRICS)]
)

EXAMPLE = """\
# HELP signup_sync_http_requests_total HTTP requests answered, by method, route template and status
# TYPE signup_sync_http_requests_total counter
signup_sync_http_requests_total{method="POST",route="/funnel/event",status="201"} 42.0
# HELP signup_sync_source_last_success_age_seconds Seconds since the source's last successful sync
# TYPE signup_sync_source_last_success_age_seconds gauge
signup_sync_source_last_success_age_seconds{source_id="1",source_type="eventbrite"} 3600.0
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    description=(
        "Request counts and latency per route template and status, events ingested, "
        "duplicates absorbed, sync runs, durations and records, webhook deliveries, database "
        "connections in use, and the age of each source's last successful sync. Needs "
        "`METRICS_TOKEN` or a full-access token (a read or ingest token is a 403). "
        "See docs/operations.md."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in the Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}},
        },
        401: {"description": "Missing or invalid bearer token"},
        403: {"description": "A valid token that is neither METRICS_TOKEN nor full access"},
    },
)
async def metrics(uow: Uow) -> Response:
    body = await uow.read(render)
    return Response(content=body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
