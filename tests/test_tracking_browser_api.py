"""The tracking API as analytics.js calls it, in-process on both backends: short paths,
text/plain bodies, the write key in the body, per-key CORS, the shared browser rate limit."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.app import create_app
from signup_sync.db.models import FunnelEvent, Lead, TrackingMessage
from signup_sync.settings import Settings, load_settings
from tests.conftest import TOKEN

PUBLIC_KEY = "wk-browser-public-0001"
OTHER_PUBLIC_KEY = "wk-browser-other-0002"
SERVER_KEY = "wk-server-secret-0003"
SITE = "https://www.example.com"
SHARED_ORIGIN = "https://app.example.org"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        cors_origins=SHARED_ORIGIN,
        segment_write_keys=(
            f"{PUBLIC_KEY}@{SITE}|*.example.net,"
            f"{OTHER_PUBLIC_KEY}=referral@https://partner.example.io,"
            f"{SERVER_KEY}"
        ),
    )


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def text_plain(body: dict[str, Any], **headers: str) -> dict[str, Any]:
    """What analytics.js's fetch sends: JSON text as text/plain."""
    return {
        "content": orjson.dumps(body),
        "headers": {"Content-Type": "text/plain", **headers},
    }


async def count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(model).where(*where)
        return int(await conn.scalar(query) or 0)


async def payloads(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(TrackingMessage.payload).order_by(TrackingMessage.id))
        return [dict(p) for p in rows.scalars()]


def page(message_id: str, anonymous_id: str = "anon-1", **context: Any) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "writeKey": PUBLIC_KEY,
        "context": {
            "page": {
                "url": f"{SITE}/?utm_source=Google&utm_medium=cpc&gclid=G-1",
                "referrer": "https://www.google.com/",
                "search": "?utm_source=Google&utm_medium=cpc&gclid=G-1",
            },
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120",
            **context,
        },
        "timestamp": "2026-06-03T10:00:00Z",
        "sentAt": "2026-06-03T10:00:00Z",
    }


SHORT_BODIES: dict[str, dict[str, Any]] = {
    "p": page("m-p"),
    "i": {"type": "identify", "messageId": "m-i", "userId": "u-1", "traits": {"x": 1}},
    "t": {"type": "track", "messageId": "m-t", "userId": "u-1", "event": "Clicked"},
    "a": {"type": "alias", "messageId": "m-a", "previousId": "anon-1", "userId": "u-1"},
    "g": {"type": "group", "messageId": "m-g", "userId": "u-1", "groupId": "g-1"},
}
LONG = {"p": "page", "i": "identify", "t": "track", "a": "alias", "g": "group"}


@pytest.mark.parametrize("short", sorted(SHORT_BODIES))
async def test_short_paths_are_their_long_forms_with_text_plain_and_body_key(
    anon_client: httpx.AsyncClient, engine: AsyncEngine, short: str
) -> None:
    body = {**SHORT_BODIES[short], "writeKey": PUBLIC_KEY}
    answer = await anon_client.post(f"/v1/{short}", **text_plain(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    again = await anon_client.post(f"/v1/{LONG[short]}", **text_plain(body, **basic(PUBLIC_KEY)))
    assert again.status_code == 200, again.text
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    assert await count(engine, TrackingMessage) == 1
    [stored] = await payloads(engine)
    assert "writeKey" not in stored  # the key is never stored, even when the body holds it


async def test_batching_body_of_analytics_next(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """``/v1/b``: {"writeKey", "batch", "sentAt"}, each event also carrying writeKey."""
    body = {
        "writeKey": PUBLIC_KEY,
        "batch": [
            page("m-1"),
            {
                "type": "identify",
                "messageId": "m-2",
                "anonymousId": "anon-1",
                "userId": "u-1",
                "writeKey": PUBLIC_KEY,
                "traits": {"email": "ana@example.com"},
                "timestamp": "2026-06-03T10:01:00Z",
            },
            {
                "type": "track",
                "messageId": "m-3",
                "anonymousId": "anon-1",
                "userId": "u-1",
                "event": "Signed Up",
                "writeKey": PUBLIC_KEY,
                "timestamp": "2026-06-03T10:02:00Z",
            },
        ],
        "sentAt": "2026-06-03T10:02:00Z",
    }
    answer = await anon_client.post("/v1/b", **text_plain(body, Origin=SITE, **basic(PUBLIC_KEY)))
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == SITE
    assert (answer.json()["accepted"], answer.json()["touchpoints"]) == (3, 2)
    again = await anon_client.post("/v1/batch", **text_plain(body, **basic(PUBLIC_KEY)))
    assert again.json()["duplicates"] == 3
    async with engine.connect() as conn:
        lead = (await conn.execute(select(Lead))).one()
        first = (
            await conn.execute(select(FunnelEvent).order_by(FunnelEvent.occurred_at).limit(1))
        ).one()
    assert (lead.email, lead.first_touch_utm_source, lead.first_touch_utm_medium) == (
        "ana@example.com",
        "google",
        "cpc",
    )
    assert (first.gclid, first.referrer) == ("G-1", "https://www.google.com/")
    assert all("writeKey" not in p for p in await payloads(engine))


async def test_preflight_allows_the_sdk_headers_for_any_keys_origin(
    anon_client: httpx.AsyncClient,
) -> None:
    """CORS_ORIGINS is set (the global middleware is on) and still does not answer /v1."""
    for origin in (SITE, "https://shop.example.net", "https://partner.example.io"):
        answer = await anon_client.options(
            "/v1/t",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
            },
        )
        assert answer.status_code == 204, (origin, answer.text)
        assert answer.headers["access-control-allow-origin"] == origin
        allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-retry-count"} <= allowed
        assert int(answer.headers["access-control-max-age"]) >= 7200
        assert "POST" in answer.headers["access-control-allow-methods"]


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://example.net", "null"])
async def test_preflight_from_an_origin_no_key_allows_is_refused(
    anon_client: httpx.AsyncClient, origin: str
) -> None:
    answer = await anon_client.options(
        "/v1/p",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers


async def test_global_cors_still_serves_the_rest_of_the_api(anon_client: httpx.AsyncClient) -> None:
    answer = await anon_client.options(
        "/tracking/stats",
        headers={"Origin": SHARED_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SHARED_ORIGIN


@pytest.mark.parametrize(
    ("key", "origin"),
    [
        (PUBLIC_KEY, "https://partner.example.io"),  # another key's origin
        (PUBLIC_KEY, "https://example.net"),  # the bare domain of a *. pattern
        (PUBLIC_KEY, "http://www.example.com"),  # another scheme
        (OTHER_PUBLIC_KEY, SITE),
        (SERVER_KEY, SITE),  # a server key is only for CORS_ORIGINS
    ],
)
async def test_a_call_from_an_origin_its_key_does_not_allow_stores_nothing(
    anon_client: httpx.AsyncClient, engine: AsyncEngine, key: str, origin: str
) -> None:
    body = {**page("m-1"), "writeKey": key}
    for headers in ({"Origin": origin, **basic(key)}, {"Origin": origin}):  # keepalive: no auth
        answer = await anon_client.post("/v1/p", **text_plain(body, **headers))
        assert answer.status_code == 403, answer.text
        assert answer.json()["code"] == "origin_not_allowed"
        assert answer.json()["errors"][0]["field"] == "Origin"
        # readable by the page, so that the SDK drops it instead of retrying a network error
        assert answer.headers["access-control-allow-origin"] == origin
    assert await count(engine, TrackingMessage) == 0


async def test_allowed_origins_and_calls_without_origin(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    calls = [
        (PUBLIC_KEY, "https://shop.example.net"),
        (PUBLIC_KEY, "https://a.b.example.net"),
        (PUBLIC_KEY, "https://WWW.example.com:443"),
        (SERVER_KEY, SHARED_ORIGIN),  # keys without origins keep following CORS_ORIGINS
        (SERVER_KEY, None),  # a server-side client sends no Origin
    ]
    for n, (key, origin) in enumerate(calls):
        headers = {**basic(key), **({"Origin": origin} if origin else {})}
        answer = await anon_client.post("/v1/p", **text_plain(page(f"m-{n}"), **headers))
        assert answer.status_code == 200, (key, origin, answer.text)
    assert await count(engine, TrackingMessage) == len(calls)


async def test_sdk_metrics_are_accepted_and_discarded(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    answer = await anon_client.post("/v1/m", **text_plain(body, Origin=SITE))
    assert answer.status_code == 200
    assert await count(engine, TrackingMessage) == 0


async def test_user_agent_is_dropped_unless_configured(
    anon_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await anon_client.post("/v1/p", **text_plain(page("m-1")))
    [stored] = await payloads(engine)
    assert "userAgent" not in stored["context"]
    assert stored["context"]["page"]["referrer"] == "https://www.google.com/"
    keeping = create_app(settings.model_copy(update={"tracking_keep_user_agent": True}))
    async with LifespanManager(keeping), _http(keeping) as http:
        await http.post("/v1/p", **text_plain(page("m-2")))
    stored = (await payloads(engine))[1]
    assert stored["context"]["userAgent"].startswith("Mozilla/5.0")


async def test_click_ids_without_columns_are_kept_in_metadata(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A ttclid alone makes a landing; it and li_fat_id go to the event's metadata."""
    body = {
        "type": "page",
        "messageId": "m-1",
        "userId": "u-9",
        "context": {
            "page": {"url": f"{SITE}/offer?ttclid=TT-1&li_fat_id=LI-1"},
            "traits": {"email": "bo@example.com"},
        },
        "writeKey": PUBLIC_KEY,
    }
    answer = await anon_client.post("/v1/p", **text_plain(body))
    assert answer.json()["touchpoints"] == 1, answer.text
    async with engine.connect() as conn:
        [metadata] = (await conn.execute(select(FunnelEvent.event_metadata))).scalars()
    assert metadata["click_ids"] == {"ttclid": "TT-1", "li_fat_id": "LI-1"}


def _http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4000)),
        base_url="http://testserver",
    )


@pytest.fixture
async def two_replicas(settings: Settings, engine: AsyncEngine) -> AsyncIterator[list[FastAPI]]:
    """Two apps over one database, as two workers or replicas would be."""
    limited = settings.model_copy(
        update={"tracking_rate_limit_per_key": 100, "tracking_rate_limit_per_address": 3}
    )
    apps = [create_app(limited), create_app(limited)]
    async with LifespanManager(apps[0]), LifespanManager(apps[1]):
        yield apps


async def test_browser_rate_limit_is_shared_by_replicas_and_answers_429(
    two_replicas: list[FastAPI], engine: AsyncEngine
) -> None:
    first, second = (_http(app) for app in two_replicas)
    async with first, second:
        statuses = []
        for n in range(4):
            http = (first, second)[n % 2]
            answer = await http.post("/v1/p", **text_plain(page(f"m-{n}"), Origin=SITE))
            statuses.append(answer.status_code)
        assert statuses == [200, 200, 200, 429]
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        assert answer.headers["access-control-expose-headers"].startswith("Retry-After")
        assert answer.json()["error"] == "rate_limited"
        # server keys are not limited: the counter is for public keys
        server = await first.post("/v1/p", **text_plain(page("m-s"), **basic(SERVER_KEY)))
        assert server.status_code == 200
    assert await count(engine, TrackingMessage) == 4


async def test_per_key_limit_counts_every_address(settings: Settings, engine: AsyncEngine) -> None:
    limited = create_app(
        settings.model_copy(
            update={"tracking_rate_limit_per_key": 2, "tracking_rate_limit_per_address": 0}
        )
    )
    async with LifespanManager(limited):
        statuses = []
        for n in range(3):
            transport = httpx.ASGITransport(app=limited, client=(f"198.51.100.{n}", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                answer = await http.post("/v1/p", **text_plain(page(f"m-{n}")))
                statuses.append(answer.status_code)
    assert statuses == [200, 200, 429]
    assert await count(engine, TrackingMessage) == 2


async def test_rudderstacks_empty_user_id_means_none(
    anon_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """RudderStack's browser SDK sends userId "" before identify: not a 400 (it drops those)."""
    body = {**page("m-1"), "userId": ""}
    answer = await anon_client.post("/v1/page", **text_plain(body, **basic(PUBLIC_KEY)))
    assert answer.status_code == 200, answer.text
    async with engine.connect() as conn:
        [(anonymous_id, user_id)] = (
            await conn.execute(select(TrackingMessage.anonymous_id, TrackingMessage.user_id))
        ).all()
    assert (anonymous_id, user_id) == ("anon-1", None)
    nobody = {**page("m-2"), "userId": "", "anonymousId": " "}
    answer = await anon_client.post("/v1/page", **text_plain(nobody, **basic(PUBLIC_KEY)))
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "userId"


async def test_a_browser_call_costs_one_statement_more_than_a_server_call(
    anon_client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rate-limit counter is the browser's only extra: one upsert, no extra lookups."""
    from signup_sync.tracking import throttle
    from tests.test_round_trips import StatementCounter

    monkeypatch.setattr(throttle.random, "randrange", lambda _n: 1)  # no pruning this time
    counter = StatementCounter(app)

    async def cost(key: str, n: int, **headers: str) -> int:
        counter.reset()
        body = {
            "batch": [
                {**page(f"p-{n}", f"anon-{n}"), "writeKey": key},
                {
                    "type": "identify",
                    "messageId": f"i-{n}",
                    "anonymousId": f"anon-{n}",
                    "userId": f"u-{n}",
                    "traits": {"email": f"p{n}@example.com"},
                },
                {"type": "track", "messageId": f"t-{n}", "userId": f"u-{n}", "event": "Signed Up"},
            ]
        }
        answer = await anon_client.post("/v1/b", **text_plain(body, **basic(key), **headers))
        assert answer.status_code == 200, answer.text
        return counter.reset()

    await cost(SERVER_KEY, 0)  # warm-up: first-use lookups of the process
    server = await cost(SERVER_KEY, 1)
    browser = await cost(PUBLIC_KEY, 2, Origin=SITE)
    assert browser == server + 1
