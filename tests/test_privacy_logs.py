"""No email or phone in the logs; no token or source secret in logs, errors or responses.

The logs of a real sync (``run_sync`` against the Eventbrite fake over HTTP, with phones),
of a sync that fails on a wrong source token and of failing requests are captured at debug
level, and searched for every email and phone of the data and every secret in play.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelSyncLog
from signup_sync.db.session import create_session_factory
from signup_sync.leads.identity import normalise_phone
from signup_sync.logs import configure_logging, get_logger, mask_phones
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from tests.conftest import TOKEN, TOKEN_ROTATED
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.helpers import LOCAL_SETTINGS, SEED_EVENT

ORG = "215487369012"
EB_ENV = "SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN"
WRONG_ENV = "SIGNUP_SYNC_SOURCE_TEST_EB_WRONG_TOKEN"
WRONG_SECRET = "eb-wrong-token-SECRET-7731"


def personal_data(fake: FakeEventbrite) -> tuple[set[str], set[str]]:
    """Every email (as sent and normalised) and phone (as sent and E.164) of the fake."""
    emails: set[str] = set()
    phones: set[str] = set()
    for i in range(fake.count):
        email = fake.flags(i).email
        if email:
            emails |= {email, email.lower()}
        phone = fake.phone_of(fake.person_of(i))
        phones |= {phone, normalise_phone(phone) or phone}
    return emails, phones


def test_phone_masking_in_free_text_and_by_key(capfd: pytest.CaptureFixture[str]) -> None:
    assert mask_phones("call +1 (305) 555-0188 or 305-555-0188") == "call ***88 or ***88"
    assert mask_phones("GET /leads/+13055550188") == "GET /leads/***88"
    # Dates, times, ids, addresses and counts are not phones.
    for text in ("2026-06-01T10:00:00+00:00", "id 7800000012", "127.0.0.1:8001", "page 2"):
        assert mask_phones(text) == text
    configure_logging("info")
    capfd.readouterr()
    get_logger("test").info(
        "x", phone="3055550188", phone_e164="+13055550188", note="+44 20 7946 0958"
    )
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert (line["phone"], line["phone_e164"], line["note"]) == ("[phone]", "[phone]", "***58")


async def test_no_personal_data_or_secret_in_logs_errors_or_responses(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    engine: AsyncEngine,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    switch, base_url = eb_server
    fake = switch.use(FakeEventbrite(count=60, phones=True))
    emails, phones = personal_data(fake)
    monkeypatch.setenv(EB_ENV, EB_TOKEN)
    monkeypatch.setenv(WRONG_ENV, WRONG_SECRET)
    configure_logging("debug")
    capfd.readouterr()
    try:
        logs, responses, answers = await _traffic(
            client, anon_client, engine, base_url, fake, capfd
        )
    finally:
        configure_logging("info")

    # The capture saw the sync and the requests (the search below is not vacuous).
    assert '"sync_finished"' in logs and '"request"' in logs
    assert "/leads/***" in logs and "p***@example.com" in logs
    for value in sorted(emails | phones):
        assert value not in logs, f"{mask_phones(value)} appears raw in the logs"
    everything = logs + "".join(x.text for x in responses) + answers
    for secret in (TOKEN, TOKEN_ROTATED, EB_TOKEN, WRONG_SECRET):
        assert secret not in everything


async def _traffic(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    engine: AsyncEngine,
    base_url: str,
    fake: FakeEventbrite,
    capfd: pytest.CaptureFixture[str],
) -> tuple[str, list[httpx.Response], str]:
    """A sync, a failing sync and failing requests; returns (logs, responses, results)."""
    responses: list[httpx.Response] = []

    def source(name: str, env: str) -> dict[str, Any]:
        config = {"base_url": base_url, "organization_id": ORG, "token_env": env}
        return {"source_type": "eventbrite", "name": name, "config": config}

    r = await client.post("/sources", json=source("Rooftop", EB_ENV))
    assert r.status_code == 201, r.text
    good_id = r.json()["id"]
    r2 = await client.post("/sources", json=source("Wrong token", WRONG_ENV))
    assert r2.status_code == 201
    responses += [r, r2]

    factory = create_session_factory(engine)
    retry = RetryPolicy(wait_scale=0)
    synced = await run_sync(factory, good_id, retry=retry, settings=LOCAL_SETTINGS)
    assert synced.status == "success" and synced.leads_created > 40
    failed = await run_sync(factory, r2.json()["id"], retry=retry, settings=LOCAL_SETTINGS)
    assert failed.status == "failed"
    assert "not authorised (401)" in failed.error_messages[0]

    email, phone = "person00010@example.com", fake.phone_of(10)
    e164 = normalise_phone(phone) or phone
    bad_event = {**SEED_EVENT, "email": email, "phone": phone, "event_type": "nope"}
    responses += [
        await client.post("/funnel/event", json=bad_event),
        await client.get(f"/leads/{e164}"),
        await client.get(f"/funnel/{email}"),
        await client.post("/privacy/erase", json={"phone": phone[:9]}),
        await anon_client.get("/leads", headers={"Authorization": f"Bearer {EB_TOKEN}"}),
        await anon_client.get("/metrics", headers={"Authorization": f"Bearer {WRONG_SECRET}"}),
    ]
    assert [x.status_code for x in responses[2:]] == [422, 404, 404, 422, 401, 401]
    responses += [
        await client.get(f"/sources/{good_id}"),
        await client.get("/sources"),
        await client.get("/sync/status/eventbrite"),
        await client.get("/metrics"),
    ]
    async with factory() as session:
        stored = (await session.execute(select(FunnelSyncLog.error_messages))).scalars().all()
    answers = synced.model_dump_json() + failed.model_dump_json() + json.dumps(stored)
    return "".join(capfd.readouterr()), responses, answers
