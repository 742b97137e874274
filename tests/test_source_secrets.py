"""Issue 13, point 2: which variables a source may name, and secret values stored encrypted."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.credentials.names import env_name_problem, service_variables
from signup_sync.credentials.vault import Vault
from signup_sync.db.models import FunnelSource
from signup_sync.db.session import create_session_factory
from signup_sync.settings import Settings, SettingsError, load_settings
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.sync_fakes import add_source

ORG = "215487369012"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"secrets_key": load_settings(secrets_key=KEY).secrets_key})


def eventbrite(base_url: str, name: str = "Rooftop", **config: Any) -> dict[str, Any]:
    return {
        "source_type": "eventbrite",
        "name": name,
        "config": {"organization_id": int(ORG), "base_url": base_url, **config},
    }


@pytest.mark.parametrize(
    "name",
    [
        "SIGNUP_SYNC_SERVICE_TOKEN",
        "ENGARDE_DATABASE_URL",
        "PRIVACY_HASH_KEY",
        "METRICS_TOKEN",
        "SIGNUP_SYNC_SECRETS_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "EVENTBRITE_TOKEN",  # the old default name
        "SIGNUP_SYNC_SOURCE_",
        "sk_live 123",
    ],
)
async def test_a_source_may_not_name_this_variable(
    client: httpx.AsyncClient, eb_server: tuple[Switch, str], name: str
) -> None:
    r = await client.post("/sources", json=eventbrite(eb_server[1], token_env=name))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "config.token_env"


def test_the_old_names_are_told_what_to_become() -> None:
    problem = env_name_problem("EVENTBRITE_TOKEN", "SIGNUP_SYNC_SOURCE_")
    assert (
        problem is not None
        and "rename EVENTBRITE_TOKEN to SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN" in problem
    )


@given(
    st.sampled_from(sorted(service_variables())),
    st.sampled_from(["SIGNUP_SYNC_", "S_", "ENGARDE_"]),
)
def test_no_prefix_makes_a_service_setting_nameable(variable: str, prefix: str) -> None:
    assert env_name_problem(variable, prefix) is not None


def test_the_prefix_setting_is_checked() -> None:
    assert load_settings(source_env_prefix="ACME_SOURCE_").source_env_prefix == "ACME_SOURCE_"
    for bad in ("", "_", "lower_", "NO_UNDERSCORE"):
        with pytest.raises(SettingsError, match="SIGNUP_SYNC_SOURCE_ENV_PREFIX"):
            load_settings(source_env_prefix=bad)
    with pytest.raises(SettingsError, match="SIGNUP_SYNC_SECRETS_KEY: key 1 is not a Fernet key"):
        load_settings(secrets_key="not-a-key")


async def test_an_old_name_fails_once_with_the_name_to_use(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switch, base_url = eb_server
    switch.use(FakeEventbrite(count=3))
    monkeypatch.setenv("EVENTBRITE_TOKEN", EB_TOKEN)
    monkeypatch.delenv("SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN", raising=False)
    factory = create_session_factory(engine)
    # Stored before the upgrade: once with the default name, once naming the old one.
    await add_source(factory, "default", source_type="eventbrite",
                     config={"organization_id": ORG, "base_url": base_url})  # fmt: skip
    body = (await client.post("/sync/eventbrite")).json()
    assert body["status"] == "failed"
    assert (
        "SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN is not set (needed for token); EVENTBRITE_TOKEN is "
        "set, but source secrets now need the SIGNUP_SYNC_SOURCE_ prefix: rename it to "
        "SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN"
    ) in body["error_messages"][0]
    old = {"organization_id": ORG, "base_url": base_url, "token_env": "EVENTBRITE_TOKEN"}
    named = await add_source(factory, "named", source_type="eventbrite", config=old)
    body = (await client.post("/sync/eventbrite", json={"source_id": named})).json()
    assert "rename EVENTBRITE_TOKEN to SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN" in str(body)
    shown = (await client.get(f"/sources/{named}")).json()["secrets"]["token"]
    assert shown["set"] is False and "rename EVENTBRITE_TOKEN" in shown["problem"]
    # Renamed: it works.
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN", EB_TOKEN)
    body = (await client.post("/sync/eventbrite", json={"source_id": 1})).json()
    assert body["status"] == "success", body


async def test_a_secret_value_is_stored_encrypted_and_never_returned(
    client: httpx.AsyncClient, engine: AsyncEngine, eb_server: tuple[Switch, str]
) -> None:
    switch, base_url = eb_server
    switch.use(FakeEventbrite(count=3))
    assert not os.environ.get("SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN")
    r = await client.post("/sources", json={**eventbrite(base_url), "secrets": {"token": EB_TOKEN}})
    assert r.status_code == 201, r.text
    source = r.json()
    assert source["config"]["organization_id"] == ORG  # issue 14: a number kept as text
    assert source["secrets"]["token"] == {"env": None, "stored": True, "set": True, "problem": None}
    for response in (r, await client.get("/sources"), await client.get(f"/sources/{source['id']}")):
        assert EB_TOKEN not in response.text
    async with create_session_factory(engine)() as session:
        row = (await session.execute(select(FunnelSource))).scalar_one()
    stored = row.secret_values or {}
    assert EB_TOKEN not in str(stored) and EB_TOKEN not in str(row.config)
    assert Vault([KEY]).decrypt(stored["token"]) == EB_TOKEN

    body = (await client.post("/sync/eventbrite")).json()
    assert body["status"] == "success", body

    r = await client.patch(f"/sources/{source['id']}", json={"secrets": {"nope": "x"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "secrets.nope"
    r = await client.patch(f"/sources/{source['id']}", json={"secrets": {"token": None}})
    assert r.status_code == 200 and r.json()["secrets"]["token"]["stored"] is False
    assert r.json()["secrets"]["token"]["env"] == "SIGNUP_SYNC_SOURCE_EVENTBRITE_TOKEN"


async def test_without_a_key_a_secret_value_is_a_422_saying_how(
    client: httpx.AsyncClient, app: Any, eb_server: tuple[Switch, str]
) -> None:
    app.state.source_access = dataclasses.replace(app.state.source_access, vault=None)
    r = await client.post(
        "/sources", json={**eventbrite(eb_server[1]), "secrets": {"token": "t0ken-value"}}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "secrets.token"
    assert (
        "SIGNUP_SYNC_SECRETS_KEY" in r.json()["detail"]
        and "signup-sync secrets-key" in r.json()["detail"]
    )
    assert "t0ken-value" not in r.text


async def test_documented_keys_are_not_mistaken_for_secrets(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/sources",
        json={"source_type": "zoom", "name": "z", "config": {
            "token_url": "https://zoom.us/oauth/token", "meeting_ids": [81234567890]}},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post(
        "/sources",
        json={"source_type": "zoom", "name": "y", "config": {"api_token": "x", "user_ids": ["me"]}},
    )
    assert r.status_code == 422 and "secrets object" in r.json()["detail"]
