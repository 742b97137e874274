"""What GET /metrics answers: the process's (or all workers') metrics plus scrape-time gauges.

``PROMETHEUS_MULTIPROC_DIR`` set (several uvicorn workers): every worker writes its values
to files there and the scrape sums them, so any worker can answer. Unset: this process's
own registry. The age of each active source's last successful sync is read from
``funnel_sources`` at scrape time, so it is right whichever worker answers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, MutableMapping, Sequence
from datetime import datetime
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.types import utcnow
from signup_sync.sync import repository

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
Freshness = Sequence[tuple[int, str, str, datetime, datetime | None]]


class SourceFreshness(Collector):
    """Per active source: seconds since its last successful sync, and when that was."""

    def __init__(self, rows: Freshness, now: datetime) -> None:
        self.rows = rows
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["source_id", "source_type", "source_name"]
        age = GaugeMetricFamily(
            "signup_sync_source_last_success_age_seconds",
            "Seconds since the source's last successful sync (since it was added, if never)",
            labels=labels,
        )
        at = GaugeMetricFamily(
            "signup_sync_source_last_success_timestamp_seconds",
            "Unix time of the source's last successful sync (absent if never)",
            labels=labels,
        )
        for source_id, source_type, name, created_at, last_success in self.rows:
            values = [str(source_id), source_type, name]
            since = last_success or created_at
            age.add_metric(values, max(0.0, (self.now - since).total_seconds()))
            if last_success is not None:
                at.add_metric(values, last_success.timestamp())
        yield age
        yield at


def prepare_multiprocess_dir(
    workers: int, environ: MutableMapping[str, str] | None = None
) -> str | None:
    """Before workers start (``signup-sync serve``): a clean PROMETHEUS_MULTIPROC_DIR.

    Set: created if missing, and emptied of a previous run's files (their counts would
    otherwise be added to this run's). Unset with several workers: a fresh temporary
    directory, exported so that every worker writes there. Unset with one worker: none.
    """
    env = os.environ if environ is None else environ
    path = env.get(MULTIPROC_ENV)
    if not path:
        if workers <= 1:
            return None
        path = tempfile.mkdtemp(prefix="signup-sync-metrics-")
        env[MULTIPROC_ENV] = path
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return path


def _process_registry() -> CollectorRegistry:
    path = os.environ.get(MULTIPROC_ENV)
    # prometheus_client chose its storage when first imported: trust that, not a later env.
    if not path or values.ValueClass is values.MutexValue:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


async def render(session: AsyncSession) -> bytes:
    """The exposition text (Prometheus text format 0.0.4)."""
    rows = await repository.source_freshness(session)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(SourceFreshness(rows, utcnow()))
    return generate_latest(_process_registry()) + generate_latest(scrape)
