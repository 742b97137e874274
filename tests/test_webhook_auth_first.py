"""Webhook receivers authenticate before they parse: no or a wrong signature is 401, whatever
the body (issue 13 finding 7: an unsigned ``[1,2]`` to /webhooks/zoom answered 422)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from signup_sync.app import create_app
from signup_sync.settings import Settings
from tests.sync_fakes import add_source
from tests.webhook_support import ENV, deliveries, sign, zoom_config

ENV_ZOOM = ENV["SIGNUP_SYNC_SOURCE_TEST_ZOOM_WEBHOOK_SECRET"]
TYPES = ("zoom", "eventbrite", "easyappointments", "poshvip")
CONFIGS: dict[str, dict[str, Any]] = {
    "zoom": zoom_config(),
    "eventbrite": {
        "organization_id": "215487369012",
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EB_WEBHOOK_SECRET",
    },
    "easyappointments": {
        "webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET",
        "site_timezone": "UTC",
    },
    "poshvip": {"webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET"},
}
BODIES = {
    "invalid-json": b'{"event": "webinar.registration_created",',
    "json-array": b"[1,2]",
    "huge-numbers": b'{"event_ts": 1e999999, "id": 123456789012345678901234567890123}',
    "empty": b"",
    "not-utf8": b'{"a": "\xff\xfe"}',
    "json-string": b'"hello"',
}


def _wrong(kind: str, raw: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query of a delivery signed with a secret that is not the source's."""
    if kind == "zoom":
        return sign(raw, int(time.time()), secret="not-the-zoom-secret"), {}
    if kind == "easyappointments":
        return {"X-Ea-Token": "not-the-ea-secret"}, {}
    if kind == "poshvip":
        return {"X-Webhook-Secret": "not-the-posh-secret"}, {"secret": "nor-this"}
    return {}, {"secret": "not-the-eventbrite-secret"}


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.mark.parametrize("signature", ["none", "wrong"])
@pytest.mark.parametrize("body", sorted(BODIES))
async def test_every_receiver_answers_401_before_reading_the_body(
    anon_client: httpx.AsyncClient, session_factory: Any, signature: str, body: str
) -> None:
    ids = {
        kind: await add_source(session_factory, kind, source_type=kind, config=CONFIGS[kind])
        for kind in TYPES
    }
    raw = BODIES[body]
    for kind in TYPES:
        for path in (f"/webhooks/{kind}", f"/webhooks/{kind}/{ids[kind]}"):
            headers, params = {"content-type": "application/json"}, {}
            if signature == "wrong":
                wrong_headers, params = _wrong(kind, raw)
                headers |= wrong_headers
            r = await anon_client.post(path, content=raw, headers=headers, params=params)
            assert r.status_code == 401, (path, body, signature, r.status_code, r.text)
            assert r.json()["error"] == "unauthorized"
    assert await deliveries(session_factory) == []


async def test_the_documented_reproduction(
    anon_client: httpx.AsyncClient, session_factory: Any
) -> None:
    await add_source(session_factory, "zoom", source_type="zoom", config=zoom_config())
    r = await anon_client.post(
        "/webhooks/zoom", content=b"[1,2]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 401


async def test_a_signed_body_that_is_not_an_object_is_still_422(
    anon_client: httpx.AsyncClient, session_factory: Any
) -> None:
    await add_source(session_factory, "zoom", source_type="zoom", config=zoom_config())
    for raw in (b"[1,2]", b"{not json", b""):
        r = await anon_client.post(
            "/webhooks/zoom", content=raw, headers=sign(raw, int(time.time()), ENV_ZOOM)
        )
        assert r.status_code == 422, raw
        assert r.json()["errors"][0]["field"] == "body"


def test_the_openapi_document_still_describes_each_receiver_body(
    app_spec: dict[str, Any],
) -> None:
    for kind in TYPES:
        for path in (f"/webhooks/{kind}", f"/webhooks/{kind}/{{source_id}}"):
            body = app_spec["paths"][path]["post"]["requestBody"]
            schema = body["content"]["application/json"]["schema"]
            assert schema["$ref"].startswith("#/components/schemas/"), path
            name = schema["$ref"].rsplit("/", 1)[1]
            assert name in app_spec["components"]["schemas"]


@pytest.fixture
def app_spec(settings: Settings) -> dict[str, Any]:
    spec: dict[str, Any] = create_app(settings).openapi()
    return spec
