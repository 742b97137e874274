"""Every outbound request is bounded: per-phase timeouts and a whole-request deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from signup_sync.sources.base import RetryPolicy, SourceConfig, SourceContext
from signup_sync.sources.errors import RetriableSourceError
from signup_sync.sources.http import SourceHttp
from tests.helpers import local_access


def ctx(retry: RetryPolicy, transport: httpx.AsyncBaseTransport | None = None) -> SourceContext:
    return SourceContext(
        source_id=1,
        access=local_access(),
        source_type="eventbrite",
        name="t",
        config=SourceConfig(),
        secrets={},
        cursor=None,
        run_started_at=datetime(2026, 1, 1, tzinfo=UTC),
        retry=retry,
        transport=transport,
    )


async def test_a_server_that_drips_its_body_hits_the_request_deadline() -> None:
    async def drip() -> AsyncIterator[bytes]:
        yield b'{"attendees": ['
        await asyncio.sleep(3600)

    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=drip()))
    policy = RetryPolicy(attempts=2, wait_scale=0, request_deadline_seconds=0.05)
    http = SourceHttp(ctx(policy, transport), base_url="http://fake.invalid/")
    try:
        with pytest.raises(RetriableSourceError, match=r"no complete answer within 0\.05 s"):
            await http.get_json("attendees/")
    finally:
        await http.aclose()
    assert http.requests == 2  # retried, each attempt bounded


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    policy = RetryPolicy(attempts=1, wait_scale=0, timeout_seconds=0.05)
    http = SourceHttp(ctx(policy), base_url=f"http://127.0.0.1:{port}/")
    try:
        with pytest.raises(RetriableSourceError, match="ReadTimeout"):
            await http.get_json("attendees/")
    finally:
        await http.aclose()
        server.close()
