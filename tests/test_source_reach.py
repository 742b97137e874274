"""Issue 13, findings 1 and 2: what a source can make the service reach, with the defaults.

The suite's usual settings allow 127.0.0.0/8 (the fakes live there); here the outbound
policy is the default one, and file paths are read only inside a temporary import directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.session import create_session_factory
from signup_sync.settings import Settings
from tests.conftest import TOKEN
from tests.fakes.listener import PASSWD, Listener, listening
from tests.sync_fakes import add_source

ORG = "215487369012"


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    path = tmp_path / "imports"
    path.mkdir()
    return path


@pytest.fixture
def settings(settings: Settings, import_dir: Path) -> Settings:
    """The default outbound policy (nothing private allowed) and an import directory."""
    return settings.model_copy(update={"outbound_allow": [], "import_dir": import_dir})


@pytest.fixture
def listener() -> Any:
    found = Listener()
    with listening(found) as base_url:
        yield found, base_url


async def post_source(client: httpx.AsyncClient, kind: str, **config: Any) -> httpx.Response:
    return await client.post(
        "/sources", json={"source_type": kind, "name": f"{kind} source", "config": config}
    )


def field_of(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    return str(r.json()["errors"][0]["field"])


async def test_finding_1_the_service_token_never_reaches_a_listener(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    listener: tuple[Listener, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen, base_url = listener
    # The exact reproduction: refused at config time, for the variable and for the address.
    r = await post_source(
        client,
        "eventbrite",
        organization_id=ORG,
        token_env="SIGNUP_SYNC_SERVICE_TOKEN",
        base_url=f"{base_url}/v3/",
    )
    assert field_of(r) == "config.token_env"
    assert "service's own settings" in r.json()["detail"]
    r = await post_source(
        client,
        "eventbrite",
        organization_id=ORG,
        token_env="SIGNUP_SYNC_SOURCE_EB",
        base_url=f"{base_url}/v3/",
    )
    assert field_of(r) == "config.base_url" and "loopback" in r.json()["detail"]
    # A source stored before the upgrade is refused again when it runs.
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_EB", "eb-token-value-123")
    await add_source(
        create_session_factory(engine),
        "old",
        source_type="eventbrite",
        config={"organization_id": ORG, "token_env": "SIGNUP_SYNC_SOURCE_EB", "base_url": base_url},
    )
    body = (await client.post("/sync/eventbrite")).json()
    assert body["status"] == "failed"
    assert "refused: 127.0.0.1 is a loopback address" in body["error_messages"][0]
    await add_source(
        create_session_factory(engine),
        "older",
        source_type="eventbrite",
        config={
            "organization_id": ORG,
            "token_env": "SIGNUP_SYNC_SERVICE_TOKEN",
            "base_url": "https://www.eventbriteapi.com/v3/",
        },
    )
    body = (await client.post("/sync/eventbrite", json={"source_id": 2})).json()
    assert body["status"] == "failed"
    assert "SIGNUP_SYNC_SERVICE_TOKEN is one of the service's own settings" in str(body)
    assert seen.seen == [] and TOKEN not in str(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "http://169.254.169.254/latest/meta-data/"),
        ("base_url", "http://10.0.0.8/v3/"),
        ("base_url", "http://[::1]:8080/v3/"),
        ("base_url", "http://[::ffff:127.0.0.1]/v3/"),
        ("base_url", "http://localhost:8001/v3/"),  # a name resolving to loopback
        ("base_url", "file:///etc/passwd"),
    ],
)
async def test_internal_addresses_are_refused_at_config_time(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    r = await post_source(client, "eventbrite", organization_id=ORG, **{field: value})
    assert field_of(r) == f"config.{field}"


async def test_other_connectors_addresses_are_checked_too(client: httpx.AsyncClient) -> None:
    zoom = {"webinar_ids": [84512345678]}  # issue 14: a JSON number is kept as text
    r = await post_source(client, "zoom", token_url="http://127.0.0.1:9/oauth/token", **zoom)
    assert field_of(r) == "config.token_url"
    ea = {"site_timezone": "UTC"}
    r = await post_source(client, "easyappointments", base_url="http://192.168.1.20/api/v1/", **ea)
    assert field_of(r) == "config.base_url"
    r = await post_source(client, "easyappointments", mode="mysql", mysql_host="10.1.2.3", **ea)
    assert field_of(r) == "config.mysql_host"
    r = await post_source(client, "easyappointments", mode="mysql", **ea)  # default 127.0.0.1
    assert field_of(r) == "config.mysql_host"
    r = await post_source(client, "poshvip", file_url="http://169.254.169.254/export.csv")
    assert field_of(r) == "config.file_url"
    ok = await post_source(client, "zoom", token_url="https://zoom.us/oauth/token", **zoom)
    assert ok.status_code == 201, ok.text  # issue 14: a documented key is not "a secret"
    assert ok.json()["config"]["webinar_ids"] == ["84512345678"]
    source_id = ok.json()["id"]
    r = await client.patch(f"/sources/{source_id}", json={"config": {"base_url": "http://[::1]/"}})
    assert field_of(r) == "config.base_url"


async def test_finding_2_files_outside_the_import_directory_are_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, import_dir: Path, tmp_path: Path
) -> None:
    for path in ("/etc/passwd", "../../../../etc/passwd", str(import_dir / ".." / "x.csv")):
        r = await post_source(client, "poshvip", file_path=path)
        assert field_of(r) == "config.file_path"
        assert "SIGNUP_SYNC_IMPORT_DIR" in r.json()["detail"]
    (import_dir / "link.csv").symlink_to("/etc/passwd")
    r = await post_source(client, "poshvip", file_path="link.csv")
    assert field_of(r) == "config.file_path"
    # A source stored before the upgrade: the read is refused, and nothing is quoted.
    await add_source(
        create_session_factory(engine),
        "old",
        source_type="poshvip",
        config={"file_path": "/etc/passwd"},
    )
    body = (await client.post("/sync/poshvip")).json()
    assert body["status"] == "failed" and "config.file_path refused" in str(body)
    assert "root:" not in str(body)


async def test_a_file_swapped_for_a_symlink_after_config_is_refused_at_read_time(
    client: httpx.AsyncClient, import_dir: Path
) -> None:
    export = import_dir / "posh.csv"
    export.write_bytes(b"order_number,event_name,event_date,email,purchased_at\n")
    r = await post_source(client, "poshvip", file_path="posh.csv")
    assert r.status_code == 201, r.text
    export.unlink()
    export.symlink_to("/etc/passwd")
    body = (await client.post("/sync/poshvip")).json()
    assert body["status"] == "failed" and "config.file_path refused" in str(body)
    assert "root:" not in str(body)


async def test_without_an_import_directory_file_paths_are_refused(
    client: httpx.AsyncClient, app: Any, import_dir: Path
) -> None:
    app.state.source_access = dataclasses.replace(app.state.source_access, import_dir=None)
    (import_dir / "posh.csv").write_bytes(b"x\n")
    r = await post_source(client, "poshvip", file_path=str(import_dir / "posh.csv"))
    assert field_of(r) == "config.file_path"
    assert "set SIGNUP_SYNC_IMPORT_DIR" in r.json()["detail"]


async def test_a_file_url_answer_is_never_echoed(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    listener: tuple[Listener, str],
    settings: Settings,
) -> None:
    seen, base_url = listener
    await add_source(
        create_session_factory(engine),
        "internal",
        source_type="poshvip",
        config={"file_url": f"{base_url}/etc/passwd"},
    )
    body = (await client.post("/sync/poshvip")).json()
    assert body["status"] == "failed" and "loopback" in body["error_messages"][0]
    assert seen.seen == []


async def test_a_fetched_file_that_is_not_an_export_is_described_not_quoted(
    client: httpx.AsyncClient, app: Any, engine: AsyncEngine, listener: tuple[Listener, str]
) -> None:
    """Even where the operator allowed the address, what came back is never repeated."""
    seen, base_url = listener
    app.state.settings.outbound_allow.append("127.0.0.1/32")
    await add_source(
        create_session_factory(engine),
        "allowed",
        source_type="poshvip",
        config={"file_url": f"{base_url}/export.csv"},
    )
    body = (await client.post("/sync/poshvip")).json()
    assert body["status"] == "failed" and "missing column(s)" in str(body)
    assert len(seen.seen) == 1
    for line in PASSWD.decode().splitlines():
        for piece in line.split(":"):
            if len(piece) > 3:
                assert piece not in str(body)


async def test_the_mysql_host_is_checked_again_when_the_sync_connects(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await add_source(
        create_session_factory(engine),
        "lan database",
        source_type="easyappointments",
        config={"mode": "mysql", "mysql_host": "127.0.0.1", "site_timezone": "UTC"},
    )
    body = (await client.post("/sync/easyappointments")).json()
    assert body["status"] == "failed"
    assert "config.mysql_host refused: 127.0.0.1 is a loopback address" in str(body)
