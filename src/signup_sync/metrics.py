"""Prometheus metric families, and the small helpers that feed them.

The families are module-level (prometheus_client's own model), so any module can count:
``metrics.WEBHOOK_DELIVERIES.labels(source_type, outcome).inc()``. Nothing here connects
or reads settings. With ``PROMETHEUS_MULTIPROC_DIR`` set before the process starts,
prometheus_client writes every value to files in that directory and GET /metrics sums
the workers (see ``signup_sync.exposition``); otherwise each process counts for itself.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

HTTP_REQUESTS = Counter(
    "signup_sync_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "signup_sync_http_request_duration_seconds",
    "HTTP request latency, by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EVENTS_INGESTED = Counter(
    "signup_sync_events_ingested",
    "Funnel events stored (committed), by source type and event type",
    ["source_type", "event_type"],
)
EVENTS_DUPLICATE = Counter(
    "signup_sync_events_duplicate",
    "Events that repeated a stored one and were absorbed (idempotency), by source and type",
    ["source_type", "event_type"],
)
EVENTS_ERASED = Counter(
    "signup_sync_events_erased",
    "Events refused because their person was erased, by source type",
    ["source_type"],
)
SYNC_RUNS = Counter(
    "signup_sync_sync_runs",
    "Sync runs finished (dry runs excluded), by source type and outcome",
    ["source_type", "outcome"],
)
SYNC_DURATION = Histogram(
    "signup_sync_sync_duration_seconds",
    "Duration of finished sync runs, by source type",
    ["source_type"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
SYNC_RECORDS = Histogram(
    "signup_sync_sync_records",
    "Source records read per finished sync run, by source type",
    ["source_type"],
    buckets=(0, 10, 100, 1_000, 10_000, 100_000, 1_000_000),
)
WEBHOOK_DELIVERIES = Counter(
    "signup_sync_webhook_deliveries",
    "Webhook deliveries received, by source type and outcome",
    ["source_type", "outcome"],
)
RATE_LIMITED = Counter(
    "signup_sync_rate_limited_requests",
    "Ingestion requests refused with 429 by the per-token rate limit, by route template",
    ["route"],
)
DB_POOL_IN_USE = Gauge(
    "signup_sync_db_pool_connections_in_use",
    "Database connections checked out of the pool (all workers summed)",
    multiprocess_mode="livesum",
)

UNMATCHED_ROUTE = "unmatched"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_DURATION.labels(*labels).observe(seconds)


def observe_sync(source_type: str, outcome: str, seconds: float, records: int) -> None:
    SYNC_RUNS.labels(source_type, outcome).inc()
    SYNC_DURATION.labels(source_type).observe(seconds)
    SYNC_RECORDS.labels(source_type).observe(records)


def track_pool(engine: AsyncEngine) -> None:
    """Keep DB_POOL_IN_USE current from the pool's checkout/checkin events."""
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_POOL_IN_USE.dec())


class _Outcome(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def source_type(self) -> str: ...
    @property
    def event_type(self) -> str: ...


_PENDING = "signup_sync.metrics.pending"


def count_on_commit(session: AsyncSession, outcomes: Iterable[_Outcome]) -> None:
    """Count ingestion outcomes once their transaction commits (a rollback forgets them)."""
    pending: Tally[tuple[str, str, str]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = Tally()
        session.info[_PENDING] = pending
        sync_session = session.sync_session

        def flush(*_: Any) -> None:
            for (status, source_type, event_type), n in pending.items():
                if status == "accepted":
                    EVENTS_INGESTED.labels(source_type, event_type).inc(n)
                elif status == "duplicate":
                    EVENTS_DUPLICATE.labels(source_type, event_type).inc(n)
                elif status == "erased":
                    EVENTS_ERASED.labels(source_type).inc(n)
            pending.clear()

        event.listen(sync_session, "after_commit", flush)
        event.listen(sync_session, "after_rollback", lambda *_: pending.clear())
    pending.update((o.status, o.source_type, o.event_type) for o in outcomes)
