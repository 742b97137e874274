"""GET /metrics: every family with its labels after traffic and a sync; token; multiprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync import metrics
from signup_sync.app import create_app
from signup_sync.db.models import FunnelSource
from signup_sync.db.session import create_session_factory
from signup_sync.db.types import utcnow
from signup_sync.exposition import MULTIPROC_ENV, prepare_multiprocess_dir
from signup_sync.settings import Settings
from signup_sync.sources.base import RetryPolicy
from signup_sync.sync.runner import run_sync
from tests.conftest import READ_TOKEN, TOKEN
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch
from tests.helpers import LOCAL_SETTINGS, SEED_EVENT
from tests.sync_fakes import add_source

METRICS_TOKEN = "metrics-token-0001"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


async def test_metrics_after_traffic_and_a_sync(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    eb_server: tuple[Switch, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switch, base_url = eb_server
    switch.use(FakeEventbrite(count=30))
    monkeypatch.setenv("SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN", EB_TOKEN)
    before = samples((await client.get("/metrics")).text)

    event = {**SEED_EVENT, "email": "m@example.com", "external_id": "metrics-1"}
    assert (await client.post("/funnel/event", json=event)).status_code == 201
    assert (await client.post("/funnel/event", json=event)).status_code == 200  # duplicate
    assert (await client.get("/leads/987654")).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    factory = create_session_factory(engine)
    config = {
        "base_url": base_url,
        "organization_id": "215487369012",
        "token_env": "SIGNUP_SYNC_SOURCE_TEST_EB_TOKEN",
    }
    synced = await add_source(factory, "Rooftop", source_type="eventbrite", config=config)
    never = await add_source(factory, "Never synced", source_type="zoom")
    async with factory() as session:  # added two hours ago
        old = utcnow() - timedelta(hours=2)
        await session.execute(update(FunnelSource).values(created_at=old))
        await session.commit()
    result = await run_sync(
        factory, synced, retry=RetryPolicy(wait_scale=0), settings=LOCAL_SETTINGS
    )
    assert result.status == "success"
    metrics.WEBHOOK_DELIVERIES.labels("zoom", "accepted").inc()

    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)

    def grew(name: str, by: float = 1, **labels: str) -> None:
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert delta == by, (name, labels, delta)

    http = {"method": "POST", "route": "/funnel/event"}
    grew("signup_sync_http_requests_total", **http, status="201")
    grew("signup_sync_http_requests_total", **http, status="200")
    grew("signup_sync_http_request_duration_seconds_count", **http, status="201")
    # Route templates, never raw paths.
    grew("signup_sync_http_requests_total", method="GET", route="/leads/{lead_id}", status="404")
    grew("signup_sync_http_requests_total", method="GET", route="unmatched", status="404")
    assert not any("987654" in dict(labels).get("route", "") for _, labels in after)

    grew("signup_sync_events_ingested_total", source_type="easyappointments",
         event_type="appointment_booked")  # fmt: skip
    grew("signup_sync_events_duplicate_total", source_type="easyappointments",
         event_type="appointment_booked")  # fmt: skip
    stored = result.details["events_stored"]
    registered = value(after, "signup_sync_events_ingested_total", source_type="eventbrite",
                       event_type="event_registered")  # fmt: skip
    attended = value(after, "signup_sync_events_ingested_total", source_type="eventbrite",
                     event_type="event_attended")  # fmt: skip
    before_eb = sum(
        value(before, "signup_sync_events_ingested_total", source_type="eventbrite", event_type=t)
        for t in ("event_registered", "event_attended")
    )
    assert registered + attended - before_eb == stored

    grew("signup_sync_sync_runs_total", source_type="eventbrite", outcome="success")
    grew("signup_sync_sync_duration_seconds_count", source_type="eventbrite")
    grew("signup_sync_sync_records_count", source_type="eventbrite")
    grew("signup_sync_sync_records_sum", by=30, source_type="eventbrite")
    grew("signup_sync_webhook_deliveries_total", source_type="zoom", outcome="accepted")
    assert ("signup_sync_db_pool_connections_in_use", frozenset()) in after

    ages = {
        dict(labels)["source_id"]: (dict(labels), v)
        for (name, labels), v in after.items()
        if name == "signup_sync_source_last_success_age_seconds"
    }
    labels, age = ages[str(synced)]
    assert labels == {
        "source_id": str(synced),
        "source_type": "eventbrite",
        "source_name": "Rooftop",
    }
    assert 0 <= age < 3600
    assert ages[str(never)][1] >= 7200  # never succeeded: the age of the source itself
    stamps = {
        dict(labels)["source_id"]
        for (name, labels), _ in after.items()
        if name == "signup_sync_source_last_success_timestamp_seconds"
    }
    assert stamps == {str(synced)}

    kinds = families(r.text)
    assert kinds["signup_sync_http_request_duration_seconds"] == "histogram"
    assert kinds["signup_sync_sync_duration_seconds"] == "histogram"
    assert kinds["signup_sync_db_pool_connections_in_use"] == "gauge"


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_metrics_need_the_service_token_when_no_metrics_token_is_set(
    anon_client: httpx.AsyncClient,
) -> None:
    assert (await anon_client.get("/metrics")).status_code == 401
    assert (await anon_client.get("/metrics", headers=bearer("wrong-token-000"))).status_code == 401
    assert (await anon_client.get("/metrics", headers=bearer(TOKEN))).status_code == 200


async def test_metrics_token_opens_metrics_only(settings: Settings, engine: AsyncEngine) -> None:
    configured = settings.model_copy(update={"metrics_tokens": [METRICS_TOKEN]})
    async with app_client(configured) as http:
        assert (await http.get("/metrics")).status_code == 401
        r = await http.get("/metrics", headers=bearer("not-the-metrics-token"))
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/metrics", headers=bearer(METRICS_TOKEN))).status_code == 200
        assert (await http.get("/metrics", headers=bearer(TOKEN))).status_code == 200
        # The metrics token holds the metrics role only; a read token lacks it.
        r = await http.get("/leads", headers=bearer(METRICS_TOKEN))
        assert r.status_code == 403 and r.json()["required_role"] == "read"
        r = await http.get("/metrics", headers=bearer(READ_TOKEN))
        assert r.status_code == 403 and r.json()["required_role"] == "metrics"


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set, values go through files and the scrape sums them."""
    script = textwrap.dedent(
        """
        import sys
        from prometheus_client import generate_latest
        from signup_sync import metrics
        from signup_sync.exposition import _process_registry
        metrics.SYNC_RUNS.labels("zoom", "success").inc(int(sys.argv[1]))
        print(generate_latest(_process_registry()).decode())
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, str(n)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for n in (2, 3)
    ]
    assert any(name.startswith("counter_") for name in os.listdir(tmp_path))
    # The second "worker" sees its own and the first one's runs.
    found = samples(outputs[1])
    assert value(found, "signup_sync_sync_runs_total", source_type="zoom", outcome="success") == 5


def test_serve_prepares_a_clean_multiprocess_dir(tmp_path: Path) -> None:
    assert prepare_multiprocess_dir(1, {}) is None
    env: dict[str, str] = {}
    made = prepare_multiprocess_dir(2, env)
    assert made is not None and env[MULTIPROC_ENV] == made and Path(made).is_dir()
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    env = {MULTIPROC_ENV: str(given)}
    assert prepare_multiprocess_dir(1, env) == str(given)
    assert list(given.iterdir()) == []
    Path(made).rmdir()


async def test_webhook_deliveries_are_counted_by_outcome(client: httpx.AsyncClient) -> None:
    def refused(text: str) -> float:
        prefix = 'signup_sync_webhook_deliveries_total{outcome="not_found",source_type="zoom"}'
        return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(prefix))

    before = refused((await client.get("/metrics")).text)
    r = await client.post(
        "/webhooks/zoom", content=b'{"event": "x"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 404  # no zoom source is configured
    assert refused((await client.get("/metrics")).text) == before + 1
