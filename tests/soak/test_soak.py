"""The short soak (12 s of load at 64 connections, on PostgreSQL) as part of the suite.

The full soak is ``python -m tests.soak.soak --duration 60`` (see docs/hardening.md). This
short one checks the same things, with a looser memory bound: 12 s is too short for the
allocator to settle, so RSS may still grow a little after the warm-up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.soak.soak import failures, soak

SHORT_RSS_TOLERANCE = 0.25


@pytest.mark.slow  # see README, Tests
@pytest.mark.soak
@pytest.mark.postgres_only
async def test_short_soak_acknowledged_events_stored_once_no_5xx_memory_flat(
    database_url: str, backend: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("the soak runs against PostgreSQL, the production database")
    report = await asyncio.to_thread(
        soak, database_url, tmp_path, duration=12, warmup=3, connections=64, attendees=1000
    )
    assert report["soak"]["requests"] > 0 and report["syncs"]["soak"]
    assert report["soak"]["invalid_sent"] > 0 and report["soak"]["duplicates_sent"] > 0
    problems = failures(report, rss_tolerance=SHORT_RSS_TOLERANCE)
    assert not problems, problems
