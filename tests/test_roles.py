"""Token roles: every route of the OpenAPI document, tried with every kind of credential.

The expected role of each operation is written out below, by hand, from the security
design (docs/security.md "Tokens and roles"); it is not read back from the application. A
route the table does not name fails the walk, so a new route must be given a role here
(and declared in its router) before the suite passes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from hypothesis import given
from hypothesis import strategies as st

from signup_sync.api.roles import Keyring, Role, require_role, undeclared_routes
from signup_sync.app import create_app
from signup_sync.settings import Settings, SettingsError, load_settings
from tests.conftest import INGEST_TOKEN, READ_TOKEN, READ_TOKEN_ROTATED, TOKEN, TOKEN_ROTATED

METRICS_ONLY_TOKEN = "test-token-metrics-0006"
WRITE_KEY = "wk-roles-test-0001"

PUBLIC, READ, INGEST, FULL, METRICS = "public", "read", "ingest", "full", "metrics"
WRITE_KEY_ROLE, WEBHOOK = "write_key", "webhook_signature"

EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    # ingest: pushing events, conversions and CSV files in
    ("POST", "/funnel/event"): INGEST,
    ("POST", "/funnel/events/batch"): INGEST,
    ("POST", "/funnel/conversion"): INGEST,
    ("POST", "/import/csv"): INGEST,
    # read: analytics, leads, exports, tracking counts
    ("GET", "/analytics/funnel-metrics"): READ,
    ("GET", "/analytics/time-to-convert"): READ,
    ("GET", "/analytics/stage-transitions"): READ,
    ("GET", "/leads"): READ,
    ("GET", "/leads/{lead_id}"): READ,
    ("GET", "/export/{kind}.csv"): READ,
    ("GET", "/tracking/stats"): READ,
    # full: erasure, sources, syncs (outbound requests), the webhook inbox
    ("DELETE", "/leads/{lead_id}"): FULL,
    ("POST", "/privacy/erase"): FULL,
    ("GET", "/sources"): FULL,
    ("POST", "/sources"): FULL,
    ("GET", "/sources/{source_id}"): FULL,
    ("PATCH", "/sources/{source_id}"): FULL,
    ("DELETE", "/sources/{source_id}"): FULL,
    ("POST", "/sources/{source_id}/check"): FULL,
    ("POST", "/sync/all"): FULL,
    ("GET", "/sync/status/{source_type}"): FULL,
    ("POST", "/sync/{source_type}"): FULL,
    ("GET", "/webhooks/inbox"): FULL,
    ("POST", "/webhooks/inbox/{delivery_id}/replay"): FULL,
    ("GET", "/metrics"): METRICS,
    # their own credentials, never a bearer token
    **{
        ("POST", f"/v1/{kind}"): WRITE_KEY_ROLE
        for kind in ("batch", "track", "identify", "page", "alias", "group", "screen")
    },
    # analytics.js's short paths (issue 15), the same handlers
    **{("POST", f"/v1/{short}"): WRITE_KEY_ROLE for short in ("p", "i", "t", "a", "g", "s", "b")},
    # the SDK's own telemetry: stored nowhere, no credentials
    ("POST", "/v1/m"): PUBLIC,
    **{
        ("POST", f"/webhooks/{kind}{suffix}"): WEBHOOK
        for kind in ("zoom", "eventbrite", "easyappointments", "poshvip")
        for suffix in ("", "/{source_id}")
    },
}

# What each credential may do: a full token everything a token can; the others one thing.
CREDENTIALS: dict[str, dict[str, str] | None] = {
    "none": None,
    "read": {"Authorization": f"Bearer {READ_TOKEN}"},
    "ingest": {"Authorization": f"Bearer {INGEST_TOKEN}"},
    "full": {"Authorization": f"Bearer {TOKEN}"},
    "metrics": {"Authorization": f"Bearer {METRICS_ONLY_TOKEN}"},
    "write_key": {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()},
}
GRANTS = {
    "none": set(),
    "read": {READ},
    "ingest": {INGEST},
    "full": {READ, INGEST, FULL, METRICS},
    "metrics": {METRICS},
    "write_key": set(),
}
BEARER_ROLES = {READ, INGEST, FULL, METRICS}
PATH_VALUES = {"lead_id": "1", "source_id": "1", "delivery_id": "1", "source_type": "zoom"}
PATH_VALUES["kind"] = "leads"


def expected_outcome(role: str, credential: str) -> str:
    """'allowed' (neither 401 nor 403), '401' or '403' — from the design, not the app."""
    if role == PUBLIC:
        return "allowed"
    if role in BEARER_ROLES:
        if credential in ("none", "write_key"):
            return "401"
        return "allowed" if role in GRANTS[credential] else "403"
    if role == WRITE_KEY_ROLE:
        return "allowed" if credential == "write_key" else "401"
    assert role == WEBHOOK
    return "refused"  # no bearer token or write key authenticates a webhook sender


def outcome(status: int) -> str:
    return str(status) if status in (401, 403) else "allowed"


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)


@pytest.fixture
def role_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"metrics_tokens": [METRICS_ONLY_TOKEN], "segment_write_keys": [WRITE_KEY]}
    )


@pytest.fixture
async def role_app(role_settings: Settings, engine: Any) -> AsyncIterator[FastAPI]:
    application = create_app(role_settings)
    async with LifespanManager(application):
        yield application


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


async def test_every_route_with_every_credential_matches_the_role_table(
    role_app: FastAPI,
) -> None:
    spec = role_app.openapi()
    operations = _operations(spec)
    assert {(m, p) for m, p, _ in operations} == set(EXPECTED), (
        "every route needs a role in EXPECTED (and a require_role in its router)"
    )
    mismatches = []
    transport = httpx.ASGITransport(app=role_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for method, template, operation in operations:
            role = EXPECTED[(method, template)]
            assert operation.get("x-required-role") == role, (method, template)
            assert f"`{role}`" in operation.get("description", ""), (method, template)
            body = {} if method in ("POST", "PATCH", "PUT") else None
            for credential, headers in CREDENTIALS.items():
                r = await http.request(method, _path(template), json=body, headers=headers)
                want = expected_outcome(role, credential)
                got = outcome(r.status_code)
                if want == "refused":
                    ok = r.status_code in (401, 404) and not r.is_success
                else:
                    ok = got == want
                if not ok:
                    mismatches.append((method, template, credential, want, r.status_code))
                if r.status_code == 403:
                    assert r.json()["error"] == "forbidden"
                    assert r.json()["required_role"] == role
                    assert f"'{role}'" in r.json()["detail"]
                for secret in (TOKEN, READ_TOKEN, INGEST_TOKEN, METRICS_ONLY_TOKEN):
                    assert secret not in r.text
                # Refused before the body is read: a malformed one changes nothing. (The
                # tracking API is the exception by its spec: the write key may be in the body.)
                if body is not None and want in ("401", "403") and role != WRITE_KEY_ROLE:
                    malformed = await http.request(
                        method,
                        _path(template),
                        content=b'[1, {"a"',
                        headers={**(headers or {}), "content-type": "application/json"},
                    )
                    if str(malformed.status_code) != want:
                        mismatches.append((method, template, credential, "malformed", want))
    assert mismatches == []


async def test_forbidden_is_json_naming_the_role(read_client: httpx.AsyncClient) -> None:
    r = await read_client.post("/sources", json={})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "error": "forbidden",
        "detail": r.json()["detail"],
        "required_role": "full",
    }
    assert "full" in r.json()["detail"] and "SIGNUP_SYNC_SERVICE_TOKEN" in r.json()["detail"]
    assert "www-authenticate" not in r.headers


@pytest.mark.parametrize("token", [READ_TOKEN, READ_TOKEN_ROTATED])
async def test_each_rotated_read_token_reads_and_nothing_else(
    anon_client: httpx.AsyncClient, token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/leads", headers=headers)).status_code == 200
    assert (await anon_client.get("/analytics/funnel-metrics", headers=headers)).status_code == 200
    r = await anon_client.post("/funnel/event", json={}, headers=headers)
    assert r.status_code == 403 and r.json()["required_role"] == "ingest"
    assert (await anon_client.post("/sync/all", json={}, headers=headers)).status_code == 403


async def test_ingest_token_ingests_but_cannot_read_or_erase(
    ingest_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    event = {
        "email": "roles@example.com",
        "event_type": "lead_captured",
        "source_type": "manual",
        "external_id": "roles-1",
    }
    r = await ingest_client.post("/funnel/event", json=event)
    assert r.status_code == 201, r.text
    lead_id = r.json()["lead_id"]
    assert (await ingest_client.get("/leads")).status_code == 403
    assert (await ingest_client.get(f"/leads/{lead_id}")).status_code == 403
    assert (await ingest_client.delete(f"/leads/{lead_id}")).status_code == 403
    r = await ingest_client.post("/privacy/erase", json={"email": "roles@example.com"})
    assert r.status_code == 403 and r.json()["required_role"] == "full"
    assert (await client.get(f"/leads/{lead_id}")).status_code == 200  # still there


async def test_read_token_cannot_erase_a_lead(
    read_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    event = {"email": "keep@example.com", "event_type": "lead_captured", "source_type": "manual"}
    lead_id = (await client.post("/funnel/event", json=event)).json()["lead_id"]
    assert (await read_client.get(f"/leads/{lead_id}")).status_code == 200
    r = await read_client.delete(f"/leads/{lead_id}")
    assert r.status_code == 403 and r.json()["required_role"] == "full"
    assert (await client.get(f"/leads/{lead_id}")).status_code == 200


async def test_metrics_token_opens_metrics_only(role_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=role_app)
    headers = {"Authorization": f"Bearer {METRICS_ONLY_TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        assert (await c.get("/metrics")).status_code == 200
        assert (await c.get("/leads")).status_code == 403
        assert (await c.post("/funnel/event", json={})).status_code == 403


def test_a_route_without_a_declared_role_is_found() -> None:
    app = FastAPI()
    declared = APIRouter(dependencies=[require_role(Role.READ)])

    @declared.get("/fine")
    async def fine() -> None:
        return None

    loose = APIRouter()

    @loose.get("/forgotten")
    async def forgotten() -> None:
        return None

    app.include_router(declared)
    app.include_router(loose)
    assert undeclared_routes(app) == ["GET /forgotten"]


def test_the_real_app_declares_a_role_on_every_route(settings: Settings) -> None:
    assert undeclared_routes(create_app(settings)) == []


def test_role_tokens_are_validated_like_service_tokens() -> None:
    settings = load_settings(read_tokens="read-token-1, read-token-2", ingest_tokens="ingest-1")
    assert settings.read_tokens == ["read-token-1", "read-token-2"]
    assert settings.ingest_tokens == ["ingest-1"]
    with pytest.raises(SettingsError, match=r"SIGNUP_SYNC_READ_TOKENS: .*at least 8"):
        load_settings(read_tokens="short")
    with pytest.raises(SettingsError, match=r"SIGNUP_SYNC_INGEST_TOKENS: .*at least 8"):
        load_settings(ingest_tokens="ok-token-1,tiny")


def test_a_token_in_two_role_variables_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(service_tokens=TOKEN, read_tokens=f"{TOKEN_ROTATED},{TOKEN}")
    message = str(caught.value)
    assert "SIGNUP_SYNC_READ_TOKENS" in message and "SIGNUP_SYNC_SERVICE_TOKEN" in message
    assert TOKEN not in message


# ---- the dashboard: a read token signs in; the session can only read -----------------------


async def _sign_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/dashboard/login", data={"token": token, "next": ""})


@pytest.mark.parametrize("token", [READ_TOKEN, READ_TOKEN_ROTATED, TOKEN])
async def test_a_read_or_full_token_signs_into_the_dashboard(
    anon_client: httpx.AsyncClient, token: str
) -> None:
    assert (await _sign_in(anon_client, token)).status_code == 303
    assert (await anon_client.get("/dashboard")).status_code == 200
    assert (await anon_client.get("/dashboard/leads")).status_code == 200
    assert (await anon_client.get("/dashboard/export/leads.csv")).status_code == 200


@pytest.mark.parametrize("token", [INGEST_TOKEN, METRICS_ONLY_TOKEN])
async def test_tokens_without_the_read_role_cannot_sign_in(role_app: FastAPI, token: str) -> None:
    transport = httpx.ASGITransport(app=role_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        r = await _sign_in(http, token)
        assert r.status_code == 403
        assert "read" in r.text and "set-cookie" not in r.headers
        assert token not in r.text
        assert (await http.get("/dashboard")).status_code == 303


async def test_a_dashboard_session_cannot_reconfigure_erase_or_sync(
    anon_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    event = {"email": "kept@example.com", "event_type": "lead_captured", "source_type": "manual"}
    lead_id = (await client.post("/funnel/event", json=event)).json()["lead_id"]
    assert (await _sign_in(anon_client, READ_TOKEN)).status_code == 303
    assert anon_client.cookies  # signed in: the cookie goes with every request below
    attempts = [
        ("POST", "/sources", {"name": "x", "source_type": "zoom", "config": {}}),
        ("PATCH", "/sources/1", {"is_active": False}),
        ("DELETE", "/sources/1", None),
        ("POST", "/sync/all", {}),
        ("POST", "/sync/zoom", {}),
        ("POST", "/privacy/erase", {"email": "kept@example.com"}),
        ("DELETE", f"/leads/{lead_id}", None),
        ("POST", "/webhooks/inbox/1/replay", None),
        ("GET", "/sources", None),
    ]
    for method, path, body in attempts:
        r = await anon_client.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.status_code)
        # The read token itself, as a bearer token, is refused with 403 naming the role.
        r = await anon_client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {READ_TOKEN}"}
        )
        assert r.status_code == 403 and r.json()["required_role"] == "full", (method, path)
    assert (await client.get(f"/leads/{lead_id}")).status_code == 200


def test_the_security_doc_table_matches_the_openapi_document(settings: Settings) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    section = doc[doc.index("### Every route and its role") :]
    rows = re.findall(r"^\| (GET|POST|PATCH|DELETE) \| `([^`]+)` \| `(\w+)` \|$", section, re.M)
    documented = {(method, path): role for method, path, role in rows}
    spec = create_app(settings).openapi()
    served = {(m, p): op.get("x-required-role") for m, p, op in _operations(spec)}
    assert documented == served
    assert documented == EXPECTED


_tokens = st.lists(st.text(min_size=8, max_size=20), max_size=4)


@given(full=_tokens, read=_tokens, ingest=_tokens, metrics=_tokens, probe=st.text(max_size=20))
def test_a_token_holds_exactly_the_roles_of_the_variables_listing_it(
    full: list[str], read: list[str], ingest: list[str], metrics: list[str], probe: str
) -> None:
    keyring = Keyring(
        full=tuple(t.encode() for t in full),
        read=tuple(t.encode() for t in read),
        ingest=tuple(t.encode() for t in ingest),
        metrics=tuple(t.encode() for t in metrics),
    )
    for given_token in [probe, *full, *read, *ingest, *metrics]:
        want: set[str] = set()
        if given_token in full:
            want |= {READ, INGEST, FULL, METRICS}
        if given_token in read:
            want.add(READ)
        if given_token in ingest:
            want.add(INGEST)
        if given_token in metrics:
            want.add(METRICS)
        assert {role.value for role in keyring.roles(given_token)} == want
