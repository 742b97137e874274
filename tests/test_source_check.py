"""Issue 18, point 9: ``POST /sources/{id}/check`` against the fake source servers.

A check authenticates and reads one page over real HTTP (127.0.0.1), names every missing
secret at once, and writes nothing (no sync log, no event, no cursor), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.fakes.zoom import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, HOST, serve, standard_zoom

ORG = "215487369012"
EB_ENV = "SIGNUP_SYNC_SOURCE_CHECK_EB_TOKEN"
ZOOM_ID_ENV = "SIGNUP_SYNC_SOURCE_CHECK_ZOOM_ID"
ZOOM_SECRET_ENV = "SIGNUP_SYNC_SOURCE_CHECK_ZOOM_SECRET"


@pytest.fixture
def zoom_url() -> Iterator[str]:
    with serve(standard_zoom().app()) as url:
        yield url


async def add(client: httpx.AsyncClient, kind: str, **config: Any) -> dict[str, Any]:
    r = await client.post(
        "/sources", json={"source_type": kind, "name": f"{kind} check", "config": config}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def add_eventbrite(client: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    return await add(client, "eventbrite", organization_id=ORG, base_url=base_url, token_env=EB_ENV)


async def add_zoom(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    return await add(
        client,
        "zoom",
        base_url=f"{url}/v2",
        token_url=f"{url}/oauth/token",
        account_id=ACCOUNT_ID,
        user_ids=[HOST],
        client_id_env=ZOOM_ID_ENV,
        client_secret_env=ZOOM_SECRET_ENV,
    )


async def counts(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        found: dict[str, Any] = {}
        for table in ("funnel_sync_logs", "funnel_events", "funnel_leads"):
            found[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()  # noqa: S608
        row = await conn.execute(
            text("SELECT cursor, last_sync_at, updated_at, lease_owner FROM funnel_sources")
        )
        found["sources"] = [tuple(r) for r in row]
    return found


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in body["checks"]}


async def test_a_check_with_every_secret_reads_one_page_and_writes_nothing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = eb_server[0].use(FakeEventbrite(count=120))
    monkeypatch.setenv(EB_ENV, EB_TOKEN)
    source = await add_eventbrite(client, eb_server[1])
    assert source["warnings"] == []
    before = await counts(engine)
    fake.requests.clear()

    r = await client.post(f"/sources/{source['id']}/check")

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body
    assert body["missing_secrets"] == []
    assert [c["name"] for c in body["checks"]] == [
        "config",
        "secrets",
        "address",
        "authenticate",
        "read_one_page",
    ]
    assert all(c["ok"] and not c["skipped"] for c in body["checks"])
    assert body["records_on_first_page"] > 0
    assert EB_TOKEN not in r.text
    assert await counts(engine) == before
    assert fake.requests  # it did ask the source


async def test_a_check_names_both_missing_secrets_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, zoom_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ZOOM_ID_ENV, raising=False)
    monkeypatch.delenv(ZOOM_SECRET_ENV, raising=False)
    source = await add_zoom(client, zoom_url)
    # Adding it warned: both variables, by name.
    assert len(source["warnings"]) == 2
    assert ZOOM_ID_ENV in source["warnings"][0] and ZOOM_SECRET_ENV in source["warnings"][1]
    before = await counts(engine)

    body = (await client.post(f"/sources/{source['id']}/check")).json()

    assert body["ok"] is False
    assert body["missing_secrets"] == [ZOOM_ID_ENV, ZOOM_SECRET_ENV]
    checks = by_name(body)
    assert checks["config"]["ok"] and checks["address"]["ok"]
    assert not checks["secrets"]["ok"]
    assert ZOOM_ID_ENV in checks["secrets"]["detail"]
    assert ZOOM_SECRET_ENV in checks["secrets"]["detail"]
    assert checks["authenticate"]["skipped"] and not checks["authenticate"]["ok"]
    assert checks["read_one_page"]["skipped"] and not checks["read_one_page"]["ok"]
    # No failed run was recorded, unlike a sync.
    assert await counts(engine) == before

    monkeypatch.setenv(ZOOM_ID_ENV, CLIENT_ID)
    monkeypatch.setenv(ZOOM_SECRET_ENV, CLIENT_SECRET)
    body = (await client.post(f"/sources/{source['id']}/check")).json()
    assert body["ok"] is True, body
    assert by_name(body)["authenticate"]["detail"] == "the source accepted the credentials"
    assert await counts(engine) == before


async def test_a_refused_secret_fails_authenticate_without_echoing_it(
    client: httpx.AsyncClient, zoom_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-zoom-secret-value-123"
    monkeypatch.setenv(ZOOM_ID_ENV, CLIENT_ID)
    monkeypatch.setenv(ZOOM_SECRET_ENV, wrong)
    source = await add_zoom(client, zoom_url)
    r = await client.post(f"/sources/{source['id']}/check")
    body = r.json()
    checks = by_name(body)
    assert body["ok"] is False
    assert body["missing_secrets"] == []
    assert checks["secrets"]["ok"]
    assert not checks["authenticate"]["ok"] and not checks["authenticate"]["skipped"]
    assert "refused" in checks["authenticate"]["detail"]
    assert checks["read_one_page"]["skipped"]
    assert wrong not in r.text and CLIENT_ID not in r.text


async def test_a_bad_token_answered_401_fails_authenticate(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eb_server[0].use(FakeEventbrite(count=10))
    bad = "not-the-eventbrite-token-42"
    monkeypatch.setenv(EB_ENV, bad)
    source = await add_eventbrite(client, eb_server[1])
    before = await counts(engine)
    r = await client.post(f"/sources/{source['id']}/check")
    body = r.json()
    checks = by_name(body)
    assert body["ok"] is False
    assert not checks["authenticate"]["ok"]
    assert "not authorised (401)" in checks["authenticate"]["detail"]
    assert checks["read_one_page"]["skipped"]
    assert bad not in r.text
    assert await counts(engine) == before


async def test_a_poshvip_source_that_reads_uploads_says_so(client: httpx.AsyncClient) -> None:
    source = await add(client, "poshvip")
    body = (await client.post(f"/sources/{source['id']}/check")).json()
    assert body["ok"] is True, body
    read = by_name(body)["read_one_page"]
    assert read["skipped"] and read["ok"]
    assert "uploaded export" in read["detail"]


async def test_a_refused_address_fails_the_address_check(
    client: httpx.AsyncClient,
    app: Any,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(EB_ENV, EB_TOKEN)
    source = await add_eventbrite(client, eb_server[1])
    # The operator narrows the policy after the source was configured.
    from signup_sync.sources.access import SourceAccess

    app.state.source_access = SourceAccess()
    body = (await client.post(f"/sources/{source['id']}/check")).json()
    checks = by_name(body)
    assert body["ok"] is False
    assert not checks["address"]["ok"] and "config.base_url" in checks["address"]["detail"]
    assert checks["authenticate"]["skipped"] and checks["read_one_page"]["skipped"]


async def test_checking_an_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/sources/999999/check")
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "source_id"
