"""Bearer-token auth: missing, wrong, rotated tokens, generated token; roles (test_roles.py)."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from signup_sync.app import create_app
from signup_sync.settings import Settings
from tests.conftest import INGEST_TOKEN, READ_TOKEN, TOKEN, TOKEN_ROTATED
from tests.helpers import SEED_EVENT

PROTECTED = [
    ("POST", "/funnel/event"),
    ("POST", "/funnel/events/batch"),
    ("POST", "/funnel/conversion"),
    ("GET", "/analytics/funnel-metrics"),
    ("GET", "/leads"),
    ("POST", "/sources"),
    ("POST", "/privacy/erase"),
    ("POST", "/sync/all"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_missing_token_is_401_with_challenge(
    anon_client: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await anon_client.request(method, path, json={})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token-value", "Basic dGVzdDp0ZXN0", f"Bearer {TOKEN}x", "Bearer"]
)
async def test_wrong_token_is_401(anon_client: httpx.AsyncClient, header: str) -> None:
    r = await anon_client.post("/funnel/event", json=SEED_EVENT, headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in r.text


@pytest.mark.parametrize("token", [TOKEN, TOKEN_ROTATED, INGEST_TOKEN])
async def test_each_rotated_or_ingest_token_can_post_events(
    anon_client: httpx.AsyncClient, token: str
) -> None:
    r = await anon_client.post(
        "/funnel/event", json=SEED_EVENT, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201


@pytest.mark.parametrize("token", [READ_TOKEN, INGEST_TOKEN])
async def test_a_valid_token_without_the_role_is_403_not_401(
    anon_client: httpx.AsyncClient, token: str
) -> None:
    r = await anon_client.post("/sources", json={}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden" and r.json()["required_role"] == "full"
    assert "www-authenticate" not in r.headers
    assert token not in r.text


async def test_the_service_token_keeps_full_access(client: httpx.AsyncClient) -> None:
    """Backward compatible: SIGNUP_SYNC_SERVICE_TOKEN alone still opens every route."""
    assert (await client.get("/sources")).status_code == 200
    assert (await client.get("/leads")).status_code == 200
    assert (await client.post("/funnel/event", json=SEED_EVENT)).status_code == 201
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get("/webhooks/inbox")).status_code == 200


async def test_open_endpoints_need_no_token(anon_client: httpx.AsyncClient) -> None:
    assert (await anon_client.get("/")).status_code == 200
    assert (await anon_client.get("/health")).status_code == 200


async def test_without_configured_token_a_random_one_is_generated_and_printed_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    open_settings = settings.model_copy(update={"service_tokens": []})
    app = create_app(open_settings)
    printed = capsys.readouterr().err
    generated = app.state.tokens[0].decode()
    assert len(generated) == 64
    assert generated in printed
    assert "SIGNUP_SYNC_SERVICE_TOKEN" in printed
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/analytics/funnel-metrics")).status_code == 401
            ok = await http.get(
                "/analytics/funnel-metrics", headers={"Authorization": f"Bearer {generated}"}
            )
            assert ok.status_code == 200
    # Printed on the console once, never in a log line.
    later = capsys.readouterr().err
    assert generated not in later
