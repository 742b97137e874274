"""``/sources``: configured sources, validated by their connector, secrets never stored."""

from __future__ import annotations

import httpx
import pytest

from tests.sync_fakes import FakeConnector, fake_connector

__all__ = ["fake_connector"]

pytestmark = pytest.mark.usefixtures("fake_connector")


async def create(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    payload = {"source_type": "easyappointments", "name": "Main calendar", **body}
    return await client.post("/sources", json=payload)


async def test_create_list_get_patch_and_delete_a_source(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_EA_TEST_KEY", "very-secret-value-42")
    r = await create(
        client,
        config={
            "base_url": "https://ea.example.com/index.php/api/v1",
            "api_key_env": "SIGNUP_SYNC_SOURCE_EA_TEST_KEY",
        },
        schedule="30 4 * * *",
    )
    assert r.status_code == 201, r.text
    source = r.json()
    sid = source["id"]
    assert source["is_active"] is True and source["has_connector"] is True
    assert source["schedule"] == "30 4 * * *"
    assert source["config"] == {
        "base_url": "https://ea.example.com/index.php/api/v1",
        "api_key_env": "SIGNUP_SYNC_SOURCE_EA_TEST_KEY",
    }
    assert source["secrets"] == {
        "api_key": {
            "env": "SIGNUP_SYNC_SOURCE_EA_TEST_KEY",
            "stored": False,
            "set": True,
            "problem": None,
        }
    }
    assert source["cursor"] is None and source["running_sync_log_id"] is None

    listed = (await client.get("/sources")).json()
    assert [s["id"] for s in listed] == [sid]
    assert (await client.get("/sources", params={"source_type": "zoom"})).json() == []
    got = await client.get(f"/sources/{sid}")
    assert got.status_code == 200 and got.json()["name"] == "Main calendar"

    # config merges key by key; null removes a key
    r = await client.patch(
        f"/sources/{sid}",
        json={"name": "Calendar", "config": {"page_size": 50, "api_key_env": None}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Calendar"
    assert r.json()["config"] == {
        "base_url": "https://ea.example.com/index.php/api/v1",
        "page_size": 50,
    }
    assert r.json()["secrets"] == {}

    r = await client.delete(f"/sources/{sid}")
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (await client.get("/sources", params={"active": "true"})).json() == []
    assert len((await client.get("/sources", params={"active": "false"})).json()) == 1
    r = await client.patch(f"/sources/{sid}", json={"is_active": True})
    assert r.json()["is_active"] is True

    for text in (
        (await client.get("/sources")).text,
        (await client.get(f"/sources/{sid}")).text,
    ):
        assert "very-secret-value-42" not in text


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"page_size": 0}, "config.page_size"),
        ({"page_size": "many"}, "config.page_size"),
        ({"unknown_option": 1}, "config.unknown_option"),
        ({"api_token": "abc123abc123"}, "config.api_token"),
        ({"client_secret": "abc"}, "config.client_secret"),
        ({"auth": {"password": "hunter2"}}, "config.auth.password"),
        ({"api_key_env": "sk_live 123-456"}, "config.api_key_env"),
    ],
)
async def test_invalid_config_is_a_422_naming_the_field_without_echoing_it(
    client: httpx.AsyncClient, config: dict[str, object], field: str
) -> None:
    r = await create(client, config=config)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["errors"][0]["field"] == field
    for value in ("abc123abc123", "hunter2", "sk_live"):
        assert value not in r.text
    assert (await client.get("/sources")).json() == []


async def test_other_invalid_input_is_named(client: httpx.AsyncClient) -> None:
    r = await create(client, schedule="every day at three")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "schedule"
    r = await create(client, source_type="myspace")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source_type"
    r = await create(client, name="")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    sid = (await create(client)).json()["id"]
    r = await client.patch(f"/sources/{sid}", json={"config": {"page_size": -1}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.page_size"
    r = await client.patch(f"/sources/{sid}", json={"source_type": "zoom"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source_type"
    assert (await client.patch("/sources/999", json={"name": "x"})).status_code == 404
    assert (await client.delete("/sources/999")).status_code == 404


async def test_names_are_unique_per_type_and_several_sources_of_a_type_may_exist(
    client: httpx.AsyncClient,
) -> None:
    assert (await create(client, name="A")).status_code == 201
    assert (await create(client, name="B")).status_code == 201
    assert (await create(client, name="A", source_type="zoom")).status_code == 201
    dup = await create(client, name="A")
    assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "name"


async def test_types_without_a_connector_are_configurable_and_off_schedules_kept(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/sources",
        json={
            "source_type": "manual",
            "name": "Trade show list",
            "schedule": "OFF",
            "config": {"note": "booth 12"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["has_connector"] is False and r.json()["schedule"] == "off"
    r = await client.post(
        "/sources",
        json={"source_type": "referral", "name": "Partners", "config": {"partner_token": "x"}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.partner_token"


async def test_sources_need_the_token(anon_client: httpx.AsyncClient) -> None:
    assert (await anon_client.get("/sources")).status_code == 401
    assert FakeConnector.source_type == "easyappointments"


async def test_config_with_nul_or_oversized_numbers_is_422_not_500(
    client: httpx.AsyncClient,
) -> None:
    # Found by schemathesis: PostgreSQL jsonb refuses \u0000; orjson refuses > 64-bit ints.
    for config in ({"note\u0000": 1}, {"n": -265117334176348852191232}):
        r = await client.post(
            "/sources", json={"source_type": "referral", "name": "x", "config": config}
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"].startswith("config")


async def test_ids_beyond_bigint_are_422(client: httpx.AsyncClient) -> None:
    # Found by schemathesis: a 25-digit id reached the database and overflowed (500).
    r = await client.get("/sources/883867726471718330433536")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "source_id"


async def test_a_name_postgresql_cannot_store_is_a_422_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/sources", json={"source_type": "manual", "name": "Lists"})
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    for raw in ('"Z\\u0000"', '"Z\\ud8a6r"'):
        body = f'{{"name": {raw}}}'
        headers = {"Content-Type": "application/json"}
        patched = await client.patch(f"/sources/{source_id}", content=body, headers=headers)
        assert patched.status_code == 422, patched.text
        assert patched.json()["errors"][0]["field"] == "name"
        posted = await client.post(
            "/sources", content=f'{{"source_type": "manual", "name": {raw}}}', headers=headers
        )
        assert posted.status_code == 422 and posted.json()["errors"][0]["field"] == "name"
