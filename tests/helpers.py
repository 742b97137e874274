"""Small helpers shared by tests."""

from __future__ import annotations

from typing import Any

import httpx

SEED_EVENT: dict[str, Any] = {
    "source_type": "easyappointments",
    "event_type": "appointment_booked",
    "email": "test@example.com",
    "first_name": "John",
    "last_name": "Doe",
}


def event(
    email: str, source_type: str, event_type: str, occurred_at: str, **extra: Any
) -> dict[str, Any]:
    return {
        "email": email,
        "source_type": source_type,
        "event_type": event_type,
        "occurred_at": occurred_at,
        **extra,
    }


async def post_event(
    client: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    r = await client.post("/funnel/event", json=body, **kwargs)
    assert r.status_code in (200, 201), r.text
    return r.json()


def error_fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


def local_access(**kwargs: Any) -> Any:
    """A SourceAccess allowing 127.0.0.0/8, where the tests' fake servers listen."""
    from signup_sync.outbound import OutboundPolicy
    from signup_sync.sources.access import SourceAccess

    return SourceAccess(outbound=OutboundPolicy.allowing("127.0.0.0/8"), **kwargs)


def local_settings(**overrides: Any) -> Any:
    """Settings allowing 127.0.0.0/8 (for tests that run syncs without the fixture)."""
    from signup_sync.settings import load_settings

    return load_settings(**{"outbound_allow": "127.0.0.0/8", **overrides})


LOCAL_SETTINGS = local_settings()


def _local_options() -> Any:
    from signup_sync.webhooks.worker import WorkerOptions

    return WorkerOptions(access=local_access())


LOCAL_OPTIONS = _local_options()
