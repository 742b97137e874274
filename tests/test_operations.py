"""Request ids, body limits, JSON logs with masked emails, OpenAPI examples."""

from __future__ import annotations

import json

import httpx
import pytest

from signup_sync.logs import mask_emails
from tests.conftest import TOKEN
from tests.helpers import SEED_EVENT


async def test_request_id_is_returned_and_a_safe_incoming_one_is_kept(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/health")
    assert len(r.headers["x-request-id"]) == 32
    r = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"


async def test_bodies_over_one_mib_are_413(client: httpx.AsyncClient) -> None:
    big = {**SEED_EVENT, "metadata": {"blob": "x" * (1024 * 1024)}}
    r = await client.post("/funnel/event", json=big)
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"

    async def chunks():
        for _ in range(2):
            yield b"x" * (600 * 1024)

    # No Content-Length: the limit is counted while reading.
    r = await client.post(
        "/funnel/event", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_mask_emails() -> None:
    assert mask_emails("to john.doe+x@example.com now") == "to j***@example.com now"


async def test_logs_are_json_with_request_id_and_no_raw_email_or_token(
    client: httpx.AsyncClient, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    r = await client.get("/funnel/secret.person@example.com", headers={"X-Request-ID": "req-77"})
    assert r.status_code == 404
    await client.post("/funnel/event", json={**SEED_EVENT, "email": "secret.person@example.com"})
    err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert any(line.get("request_id") == "req-77" and line["status"] == 404 for line in access)
    assert "secret.person@example.com" not in err
    assert "s***@example.com" in err
    assert TOKEN not in err


async def test_openapi_has_an_example_for_every_request_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody")
            if not body:
                continue
            content = body["content"]
            if "application/json" not in content:
                assert any("example" in media or "examples" in media for media in content.values())
                continue
            schema = content["application/json"]["schema"]
            refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
            ref = next(r for r in refs if r).rsplit("/", 1)[1]
            assert schemas[ref].get("examples"), f"{method.upper()} {path} has no example"


async def test_openapi_has_an_example_for_every_success_response(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            content = ok.get("content", {}).get("application/json")
            if not content or "$ref" not in content["schema"]:
                continue
            ref = content["schema"]["$ref"].rsplit("/", 1)[1]
            assert schemas[ref].get("examples"), f"{method.upper()} {path} response has no example"
