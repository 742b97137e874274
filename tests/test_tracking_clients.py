"""The real Segment and RudderStack Python clients against the running service.

Each client is pointed at the service by host only. Between them sits a small proxy that
forwards every request but loses the response to the first batch (the service stored it,
the client sees a 500), so the client resends the same batch: messageId dedupe must hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import backoff
import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead, TrackingMessage
from tests.server import RunningServer, run_server

WRITE_KEY = "wk-clients-test-0001"


class LossyProxy:
    """Forwards to the service; answers 500 to the first POST /v1/batch after forwarding it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.batches: list[dict[str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                keep = ("authorization", "content-type", "content-encoding", "user-agent")
                headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
                reply = httpx.post(f"{proxy.upstream}{self.path}", content=body, headers=headers)
                proxy.batches.append(
                    {"encoding": headers.get("Content-Encoding"), "status": reply.status_code}
                )
                status, content = reply.status_code, reply.content
                if len(proxy.batches) == 1:
                    status, content = 500, b'{"code": "lost", "message": "response lost"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LossyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("tracking-server")
    with run_server(database_url, tmp, extra_env={"SEGMENT_WRITE_KEYS": WRITE_KEY}) as server:
        yield server


@pytest.fixture
def proxy(service: RunningServer, engine: AsyncEngine) -> Iterator[LossyProxy]:
    with LossyProxy(service.url) as running:
        yield running


def _instant() -> Iterator[float | None]:
    yield None  # backoff primes its wait generator with send(None)
    while True:
        yield 0.0


def journey(client: Any, prefix: str) -> None:
    """Anonymous landing with UTMs, identify with an email, a mapped and an unmapped track."""
    anon = f"{prefix}-anon"
    client.page(
        anonymous_id=anon,
        name="Home",
        properties={"url": "https://example.com/?utm_source=google"},
        context={
            "campaign": {"source": "google", "medium": "cpc", "name": "launch"},
            "page": {"url": "https://example.com/", "referrer": "https://www.google.com/"},
        },
        message_id=f"{prefix}-page",
    )
    client.identify(
        user_id=f"{prefix}-user",
        anonymous_id=anon,
        traits={"email": f"{prefix}@example.com", "firstName": "Zoë"},
        message_id=f"{prefix}-identify",
    )
    client.track(
        user_id=f"{prefix}-user",
        event="Signed Up",
        properties={"plan": "pro"},
        message_id=f"{prefix}-signup",
    )
    client.track(user_id=f"{prefix}-user", event="Clicked Banner", message_id=f"{prefix}-click")
    client.flush()


async def _stored(engine: AsyncEngine, prefix: str) -> tuple[Any, list[Any], list[Any]]:
    async with engine.connect() as conn:
        lead = (await conn.execute(select(Lead).where(Lead.email == f"{prefix}@example.com"))).one()
        events = (
            await conn.execute(select(FunnelEvent).where(FunnelEvent.lead_id == lead.id))
        ).all()
        messages = (await conn.execute(select(TrackingMessage))).all()
    return lead, list(events), list(messages)


async def _check(engine: AsyncEngine, prefix: str, proxy: LossyProxy) -> None:
    # The first batch was stored but its answer lost; the client sent it again.
    assert len(proxy.batches) >= 2
    assert all(b["status"] == 200 for b in proxy.batches)
    lead, events, messages = await _stored(engine, prefix)
    assert sorted((e.event_type, e.external_id) for e in events) == [
        ("lead_captured", f"segment:{prefix}-page"),
        ("signup_completed", f"segment:{prefix}-signup"),
    ]
    assert (lead.first_touch_utm_campaign, lead.first_name, lead.stage) == ("launch", "Zoë", 5)
    assert sorted((m.message_id, m.status) for m in messages) == [
        (f"{prefix}-click", "unmapped"),
        (f"{prefix}-identify", "recorded"),
        (f"{prefix}-page", "touchpoint"),
        (f"{prefix}-signup", "touchpoint"),
    ]


@pytest.mark.slow  # see README, Tests
async def test_segment_client_retry_is_deduplicated(engine: AsyncEngine, proxy: LossyProxy) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        WRITE_KEY, host=proxy.url, on_error=lambda e, batch: errors.append(e), max_retries=3
    )
    try:
        journey(client, "seg")
    finally:
        client.shutdown()
    assert errors == []
    await _check(engine, "seg", proxy)


async def test_rudder_client_gzip_retry_is_deduplicated(
    engine: AsyncEngine, proxy: LossyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backoff, "expo", _instant)  # the Rudder client retries at once
    errors: list[Any] = []
    client = RudderClient(
        WRITE_KEY, host=proxy.url, on_error=lambda e, batch: errors.append(e), max_retries=3
    )
    try:
        journey(client, "rud")
    finally:
        client.shutdown() if hasattr(client, "shutdown") else client.join()
    assert errors == []
    assert {b["encoding"] for b in proxy.batches} == {"gzip"}
    await _check(engine, "rud", proxy)


async def test_a_wrong_write_key_is_reported_to_the_client_not_retried(
    service: RunningServer, engine: AsyncEngine
) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        "not-the-key-000", host=service.url, on_error=lambda e, batch: errors.append(e)
    )
    try:
        client.track(user_id="u", event="Signed Up")
        client.flush()
    finally:
        client.shutdown()
    assert [getattr(e, "status", None) for e in errors] == [401]
    assert "Unknown write key" in str(errors[0])
    async with httpx.AsyncClient(base_url=service.url) as http:
        r = await http.get("/tracking/stats", headers={"Authorization": f"Bearer {service.token}"})
    assert r.json()["messages"] == 0
