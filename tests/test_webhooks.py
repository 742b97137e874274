"""Webhook receivers: each sender authenticated its own way; stored raw; acknowledged at once.

Zoom vectors are source-apis.md §6 (Z1-Z3 and the negatives), recomputed here from the
documented algorithm. Processing is tested in test_webhook_worker.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from signup_sync.webhooks.verify import (
    VerificationError,
    verify_zoom,
    zoom_signature,
    zoom_url_validation,
)
from tests.sync_fakes import add_source
from tests.webhook_support import (
    EA_SECRET,
    EB_SECRET,
    ENV,
    POSH_SECRET,
    Z1_BODY,
    Z1_TS,
    Z3_BODY,
    Z3_TS,
    ZOOM_SECRET,
    deliveries,
    post_zoom,
    sign,
    zoom_config,
)

Z1_SIGNATURE = "v0=2961103d04e2724f082faaff3b47c9ae87a40a0417f25097176e0b3141e45eb1"
Z2_ENCRYPTED = "0ed7674589a879105652de4ef132c56b0c0b7336bcf521eb3fe6fdefca1eff2f"
Z3_SIGNATURE = "v0=d7baa3cedc21dbe0e4e5af1f0113fdbc0ef6203a093a3e7fa18d74984b5f5acc"
Z3_WRONG_TS = "v0=37961c8eb22889f25e07904d9afa6364f8f73e4c4358485f61c9618edd7c1b9e"
Z3_RESERIALISED = "v0=e61d6e3ffba9eb48d2765a0fb7a13db369dda7607c4d74e360cf83495f09630a"

EA_ENV = "SIGNUP_SYNC_SOURCE_TEST_EA_WEBHOOK_SECRET"
EB_ENV = "SIGNUP_SYNC_SOURCE_TEST_EB_WEBHOOK_SECRET"


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.fixture
def zoom_clock(app: FastAPI) -> None:
    """The documented vectors are from 2024: the service's clock is set a few seconds later."""
    app.state.clock = lambda: Z3_TS + 10


# ---- Zoom signature (pure) -----------------------------------------------------------------


def _independent(secret: str, ts: str, raw: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()


def test_zoom_known_answer_vectors() -> None:
    z1, z3 = Z1_BODY.encode(), Z3_BODY.encode()
    assert len(z1) == 110 and len(z3) == 316  # ü is two bytes
    assert _independent(ZOOM_SECRET, str(Z1_TS), z1) == Z1_SIGNATURE
    assert _independent(ZOOM_SECRET, str(Z3_TS), z3) == Z3_SIGNATURE
    assert zoom_signature(ZOOM_SECRET, str(Z1_TS), z1) == Z1_SIGNATURE
    assert zoom_signature(ZOOM_SECRET, str(Z3_TS), z3) == Z3_SIGNATURE
    for ts, raw, signature in ((Z1_TS, z1, Z1_SIGNATURE), (Z3_TS, z3, Z3_SIGNATURE)):
        verify_zoom(
            ZOOM_SECRET,
            signature=signature,
            timestamp=str(ts),
            raw_body=raw,
            now=ts + 1,
            max_age_seconds=300,
        )
    assert zoom_url_validation(ZOOM_SECRET, "qgg8vlvZRS6UYooatFL8Aw") == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": Z2_ENCRYPTED,
    }


def test_zoom_negative_vectors_are_rejected() -> None:
    z3 = Z3_BODY.encode()
    # "a space after every \":\"" (the three characters), as §6 computed it.
    reserialised = Z3_BODY.replace('":"', '": "').encode()
    # The documented negatives: what those inputs really sign to, and Z3's signature refused.
    assert _independent(ZOOM_SECRET, "1717430402", z3) == Z3_WRONG_TS
    assert _independent(ZOOM_SECRET, str(Z3_TS), reserialised) == Z3_RESERIALISED
    cases = [
        ("1717430402", z3),  # another timestamp
        (str(Z3_TS), reserialised),  # the body re-serialised: why the raw bytes matter
        (str(Z3_TS), z3.replace(b"Ana", b"Eve")),  # a tampered body
    ]
    for ts, raw in cases:
        with pytest.raises(VerificationError, match="does not match"):
            verify_zoom(
                ZOOM_SECRET,
                signature=Z3_SIGNATURE,
                timestamp=ts,
                raw_body=raw,
                now=Z3_TS,
                max_age_seconds=300,
            )
    with pytest.raises(VerificationError, match="does not match"):
        verify_zoom(
            "another-secret",
            signature=Z3_SIGNATURE,
            timestamp=str(Z3_TS),
            raw_body=z3,
            now=Z3_TS,
            max_age_seconds=300,
        )
    # Right signature, but older than 5 minutes (a replay).
    with pytest.raises(VerificationError, match="timestamp"):
        verify_zoom(
            ZOOM_SECRET,
            signature=Z3_SIGNATURE,
            timestamp=str(Z3_TS),
            raw_body=z3,
            now=Z3_TS + 301,
            max_age_seconds=300,
        )
    with pytest.raises(VerificationError, match="missing"):
        verify_zoom(
            ZOOM_SECRET, signature=None, timestamp=None, raw_body=z3, now=0, max_age_seconds=300
        )


# ---- Zoom receiver -------------------------------------------------------------------------


async def test_zoom_url_validation_challenge_is_answered_and_not_stored(
    anon_client: httpx.AsyncClient, session_factory, zoom_clock: None
) -> None:
    await add_source(session_factory, "webinars", source_type="zoom", config=zoom_config())
    r = await post_zoom(anon_client, Z1_BODY, Z1_TS)
    assert r.status_code == 200, r.text
    assert r.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": Z2_ENCRYPTED}
    assert await deliveries(session_factory) == []


async def test_zoom_event_is_stored_raw_and_a_redelivery_is_a_duplicate(
    anon_client: httpx.AsyncClient, session_factory, zoom_clock: None
) -> None:
    source_id = await add_source(
        session_factory, "webinars", source_type="zoom", config=zoom_config()
    )
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    again = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    assert again.json() == {"status": "duplicate", "delivery_id": r.json()["delivery_id"]}
    [stored] = await deliveries(session_factory)
    assert stored.body == Z3_BODY.encode()  # the exact bytes, ü included
    assert (stored.status, stored.attempts, stored.source_id) == ("pending", 0, source_id)
    assert stored.dedupe_key.startswith("zoom:1717430401000:")
    assert stored.headers is not None and "x-zm-signature" not in stored.headers
    assert stored.headers["x-zm-request-timestamp"] == str(Z3_TS)


async def test_zoom_bad_signature_old_timestamp_or_none_is_401_and_nothing_stored(
    anon_client: httpx.AsyncClient, app: FastAPI, session_factory
) -> None:
    await add_source(session_factory, "webinars", source_type="zoom", config=zoom_config())
    raw = Z3_BODY.encode()
    app.state.clock = lambda: Z3_TS + 10
    tampered = await anon_client.post(
        "/webhooks/zoom", content=raw.replace(b"Ana", b"Eve"), headers=sign(raw, Z3_TS)
    )
    unsigned = await anon_client.post(
        "/webhooks/zoom", content=raw, headers={"content-type": "application/json"}
    )
    wrong_key = await anon_client.post(
        "/webhooks/zoom", content=raw, headers=sign(raw, Z3_TS, secret="not-the-secret")
    )
    app.state.clock = lambda: Z3_TS + 301  # a correctly signed replay, 5 minutes later
    replayed = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    for response in (tampered, unsigned, wrong_key, replayed):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
        assert ZOOM_SECRET not in response.text
    assert "timestamp" in replayed.json()["detail"]
    assert await deliveries(session_factory) == []


@pytest.mark.slow  # see README, Tests
async def test_source_is_chosen_by_id_or_as_the_single_active_one(
    anon_client: httpx.AsyncClient, session_factory, zoom_clock: None
) -> None:
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    assert r.status_code == 404  # no Zoom source configured
    first = await add_source(session_factory, "a", source_type="zoom", config=zoom_config())
    second = await add_source(session_factory, "b", source_type="zoom", config=zoom_config())
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    assert r.status_code == 409 and "/webhooks/zoom/" in r.json()["detail"]
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS, path=f"/webhooks/zoom/{second}")
    assert r.status_code == 200
    ea = await add_source(session_factory, "ea", config={"webhook_secret_env": "X"})
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS, path=f"/webhooks/zoom/{ea}")
    assert r.status_code == 404  # not a Zoom source
    [stored] = await deliveries(session_factory)
    assert stored.source_id == second != first


async def test_a_source_without_a_webhook_secret_refuses_deliveries(
    anon_client: httpx.AsyncClient, session_factory, zoom_clock: None, monkeypatch
) -> None:
    config = zoom_config(webhook_secret_env=None)
    await add_source(session_factory, "webinars", source_type="zoom", config=config)
    r = await post_zoom(anon_client, Z3_BODY, Z3_TS)
    assert r.status_code == 401
    assert "not enabled" in r.json()["detail"]
    assert "www-authenticate" not in r.headers  # not about the service token
    assert await deliveries(session_factory) == []


# ---- EasyAppointments, Eventbrite, Posh ----------------------------------------------------

EA_BODY = {
    "action": "appointment_save",
    "payload": {"id": 1001, "id_users_customer": 342, "is_unavailability": False},
}
EB_BODY = {
    "config": {"action": "order.placed", "webhook_id": "1806556"},
    "api_url": "https://www.eventbriteapi.com/v3/orders/4512000000/",
}


async def test_easyappointments_secret_header_right_wrong_or_renamed(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    ea = await add_source(
        session_factory,
        "ea",
        config={"webhook_secret_env": EA_ENV, "site_timezone": "UTC"},
    )
    ok = await anon_client.post(
        "/webhooks/easyappointments", json=EA_BODY, headers={"X-Ea-Token": EA_SECRET}
    )
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    for headers in ({"X-Ea-Token": EA_SECRET + "x"}, {"X-Ea-Token": ""}, {}):
        r = await anon_client.post("/webhooks/easyappointments", json=EA_BODY, headers=headers)
        assert r.status_code == 401, headers
    renamed = await add_source(
        session_factory,
        "ea2",
        config={
            "webhook_secret_env": EA_ENV,
            "webhook_header": "X-Hook-Key",
            "site_timezone": "UTC",
        },
    )
    path = f"/webhooks/easyappointments/{renamed}"
    wrong_name = await anon_client.post(path, json=EA_BODY, headers={"X-Ea-Token": EA_SECRET})
    right_name = await anon_client.post(path, json=EA_BODY, headers={"X-Hook-Key": EA_SECRET})
    assert (wrong_name.status_code, right_name.status_code) == (401, 200)
    stored = await deliveries(session_factory)
    assert [d.source_id for d in stored] == [ea, renamed]


async def test_eventbrite_secret_in_the_url(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    eb = await add_source(
        session_factory,
        "tickets",
        source_type="eventbrite",
        config={
            "organization_id": "215487369012",
            "webhook_secret_env": EB_ENV,
        },
    )
    headers = {"X-Eventbrite-Delivery": "1806556-1", "X-Eventbrite-Event": "order.placed"}
    path = f"/webhooks/eventbrite/{eb}"
    assert (await anon_client.post(path, json=EB_BODY)).status_code == 401
    r = await anon_client.post(path, json=EB_BODY, params={"secret": "guess"})
    assert r.status_code == 401
    r = await anon_client.post(path, json=EB_BODY, params={"secret": EB_SECRET}, headers=headers)
    assert r.status_code == 200
    # Eventbrite's delivery id makes the dedupe key; the single source needs no id.
    r = await anon_client.post(
        "/webhooks/eventbrite", json=EB_BODY, params={"secret": EB_SECRET}, headers=headers
    )
    assert r.json()["status"] == "duplicate"
    [stored] = await deliveries(session_factory)
    assert stored.dedupe_key == "delivery:1806556-1"
    assert stored.headers == {
        "content-type": "application/json",
        "user-agent": stored.headers["user-agent"],
        "x-eventbrite-delivery": "1806556-1",
        "x-eventbrite-event": "order.placed",
    }


async def test_posh_relay_secret_in_a_header_or_the_url(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    await add_source(
        session_factory,
        "posh",
        source_type="poshvip",
        config={"webhook_secret_env": "SIGNUP_SYNC_SOURCE_TEST_POSH_WEBHOOK_SECRET"},
    )
    body = {"order_number": "PSH-1", "email": "a@example.com"}
    r = await anon_client.post("/webhooks/poshvip", json=body)
    assert r.status_code == 401
    r = await anon_client.post("/webhooks/poshvip", json=body, params={"secret": POSH_SECRET})
    assert r.status_code == 200
    r = await anon_client.post(
        "/webhooks/poshvip", json={**body, "n": 2}, headers={"X-Webhook-Secret": POSH_SECRET}
    )
    assert r.status_code == 200
    assert len(await deliveries(session_factory)) == 2


async def test_bodies_that_are_not_json_objects_are_422(
    anon_client: httpx.AsyncClient, session_factory
) -> None:
    config = {"webhook_secret_env": EA_ENV, "site_timezone": "UTC"}
    await add_source(session_factory, "ea", config=config)
    headers = {"X-Ea-Token": EA_SECRET, "content-type": "application/json"}
    for raw in (b"[1, 2]", b"not json", b""):
        r = await anon_client.post("/webhooks/easyappointments", content=raw, headers=headers)
        assert r.status_code == 422, raw
    assert await deliveries(session_factory) == []


async def test_the_inbox_endpoints_need_the_service_token(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await anon_client.get("/webhooks/inbox")).status_code == 401
    assert (await anon_client.post("/webhooks/inbox/1/replay")).status_code == 401
    assert (await client.get("/webhooks/inbox")).json() == []
    assert (await client.post("/webhooks/inbox/1/replay")).status_code == 404
