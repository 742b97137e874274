"""Bearer-token auth: missing, wrong, rotated tokens, generated token."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from signup_sync.app import create_app
from signup_sync.settings import Settings
from tests.conftest import TOKEN, TOKEN_ROTATED
from tests.helpers import SEED_EVENT

PROTECTED = [
    ("POST", "/funnel/event"),
    ("POST", "/funnel/events/batch"),
    ("POST", "/funnel/conversion"),
    ("GET", "/analytics/funnel-metrics"),
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


@pytest.mark.parametrize("token", [TOKEN, TOKEN_ROTATED])
async def test_each_rotated_token_is_valid(anon_client: httpx.AsyncClient, token: str) -> None:
    r = await anon_client.post(
        "/funnel/event", json=SEED_EVENT, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201


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
