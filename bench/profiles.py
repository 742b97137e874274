"""Sizes: the full benchmark and the CI smoke run."""

from __future__ import annotations

from dataclasses import dataclass

from bench.dataset import DatasetSpec


@dataclass(frozen=True)
class Profile:
    name: str
    runs: int
    seconds: float  # each timed load phase
    warmup_seconds: float
    connections: int
    batch_connections: int
    batch_size: int
    sync_records: int
    sync_small: int
    sync_large: int
    rss_runs: int
    page_size: int
    rss_page_size: int  # the 1M-record run at 50 a page alone takes ~4.5 min
    metrics_requests: int
    dataset: DatasetSpec


FULL = Profile(
    name="full",
    runs=3,
    seconds=6,
    warmup_seconds=2,
    connections=64,
    batch_connections=4,
    batch_size=1000,
    sync_records=100_000,
    sync_small=10_000,
    sync_large=1_000_000,
    rss_runs=1,
    page_size=50,
    rss_page_size=500,
    metrics_requests=7,
    dataset=DatasetSpec(leads=990_000, heavy_leads=10_000, extra_touches=6.6),
)

SMOKE = Profile(
    name="smoke",
    runs=1,
    seconds=1,
    warmup_seconds=1,
    connections=8,
    batch_connections=2,
    batch_size=50,
    sync_records=150,
    sync_small=50,
    sync_large=200,
    rss_runs=1,
    page_size=50,
    rss_page_size=50,
    metrics_requests=1,
    dataset=DatasetSpec(leads=1_000, heavy_leads=50, extra_touches=2.0),
)
