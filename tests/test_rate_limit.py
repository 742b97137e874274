"""Per-token rate limit on ingestion: 429 + Retry-After when enabled, nothing when not."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.api.ratelimit import TokenBuckets
from signup_sync.app import create_app
from signup_sync.settings import Settings
from tests.conftest import TOKEN, TOKEN_ROTATED
from tests.helpers import SEED_EVENT


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == 0.5  # one request every half second
    assert buckets.take("b") == 0.0  # another key has its own bucket
    now[0] = 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == 0.5
    now[0] = 100.0  # refills up to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


async def test_429_with_retry_after_per_token_when_enabled(
    settings: Settings, engine: AsyncEngine
) -> None:
    limited = settings.model_copy(
        update={"ingest_rate_limit_per_second": 0.01, "ingest_rate_limit_burst": 2}
    )
    app = create_app(limited)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        first = {"Authorization": f"Bearer {TOKEN}"}
        for i in range(2):
            body = {**SEED_EVENT, "external_id": f"rl-{i}"}
            assert (await http.post("/funnel/event", json=body, headers=first)).status_code == 201
        r = await http.post("/funnel/events/batch", json={"events": [SEED_EVENT]}, headers=first)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "rate_limited"
        assert r.json()["retry_after"] == int(r.headers["retry-after"])
        assert TOKEN not in r.text
        # Another token has its own bucket; reads are not limited.
        other = {"Authorization": f"Bearer {TOKEN_ROTATED}"}
        assert (await http.post("/funnel/event", json=SEED_EVENT, headers=other)).status_code == 201
        assert (await http.get("/leads", headers=first)).status_code == 200
        # Authentication comes first: a bad token is a 401, not a 429.
        bad = {"Authorization": "Bearer not-a-valid-token"}
        assert (await http.post("/funnel/event", json=SEED_EVENT, headers=bad)).status_code == 401


async def test_no_limit_when_disabled(client: httpx.AsyncClient) -> None:
    for i in range(60):
        r = await client.post("/funnel/event", json={**SEED_EVENT, "external_id": f"n-{i}"})
        assert r.status_code == 201
        assert "retry-after" not in r.headers
