"""GET /leads (filters, sorts, cursor pages) and GET /leads/{id} (timeline)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from signup_sync.leads.schemas import LeadSort
from tests import funnel_data
from tests.funnel_data import EXPECTED


async def _emails(client: httpx.AsyncClient, **params: Any) -> set[str]:
    r = await client.get("/leads", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return {lead["email"] for lead in r.json()["items"]}


async def test_filters_pick_the_expected_people(client: httpx.AsyncClient) -> None:
    await funnel_data.load(client)
    assert await _emails(client) == set(EXPECTED)
    assert await _emails(client, min_stage=3) == {
        "ana@example.com",
        "dev@example.com",
        "eli@example.com",
        "fay@example.com",
    }
    assert await _emails(client, stage=2) == {"ben@example.com", "gus@example.com"}
    assert await _emails(client, stage=5) == set()
    assert await _emails(client, source_type="zoom") == {"ana@example.com", "fay@example.com"}
    # UTMs are stored lower-cased, so the filter is case-insensitive.
    assert await _emails(client, utm_campaign="SPRING") == {
        "ana@example.com",
        "cara@example.com",
        "fay@example.com",
    }
    assert await _emails(client, start_date="2026-06-05", end_date="2026-07-01") == {
        "ben@example.com",
        "cara@example.com",
        "dev@example.com",
    }
    assert await _emails(client, source_type="zoom", min_stage=6) == {"ana@example.com"}


async def test_lead_fields(client: httpx.AsyncClient) -> None:
    await funnel_data.load(client)
    r = await client.get("/leads", params={"utm_campaign": "spring", "sort": "first_seen_at"})
    items = r.json()["items"]
    ana = items[0]
    assert ana["email"] == "ana@example.com"
    assert ana["stage"] == 6
    assert ana["stage_name"] == "converted"
    assert ana["first_touch_source_type"] == "zoom"
    assert ana["first_touch_utm_source"] == "google"
    assert ana["first_name"] == "Ana"
    assert ana["last_name"] == "Núñez"
    assert datetime.fromisoformat(ana["converted_at"]) == datetime.fromisoformat(
        "2026-06-10T10:00:00+00:00"
    )


@pytest.mark.parametrize(
    "sort",
    ["first_seen_at", "-first_seen_at", "last_seen_at", "-last_seen_at", "stage", "-stage"],
)
async def test_cursor_pages_walk_every_lead_once_in_order(
    client: httpx.AsyncClient, sort: str
) -> None:
    await funnel_data.load(client)
    everything = (await client.get("/leads", params={"limit": 500})).json()["items"]
    key = sort.lstrip("-")
    descending = sort.startswith("-")

    def order(lead: dict[str, Any]) -> tuple[Any, int]:
        value = lead[key] if key == "stage" else datetime.fromisoformat(lead[key])
        return (value, lead["id"])

    expected = [lead["id"] for lead in sorted(everything, key=order, reverse=descending)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/leads", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["items"]) <= 2
        seen += [lead["id"] for lead in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 4  # 7 leads, 2 a page
    # Ties exist (ben and cara share a first-seen time; several share a stage).
    assert len({order(lead)[0] for lead in everything}) < len(everything)


async def test_cursor_pages_keep_the_filters(client: httpx.AsyncClient) -> None:
    await funnel_data.load(client)
    first = (await client.get("/leads", params={"min_stage": 2, "limit": 3})).json()
    assert len(first["items"]) == 3
    second = (
        await client.get(
            "/leads", params={"min_stage": 2, "limit": 3, "cursor": first["next_cursor"]}
        )
    ).json()
    emails = {lead["email"] for lead in first["items"] + second["items"]}
    assert emails == {e for e, (stage, *_) in EXPECTED.items() if stage >= 2}
    assert second["next_cursor"] is None


async def test_bad_cursor_and_limits_are_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    await funnel_data.load(client)
    r = await client.get("/leads", params={"cursor": "not-a-cursor"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"
    page = (await client.get("/leads", params={"limit": 1, "sort": "stage"})).json()
    r = await client.get("/leads", params={"cursor": page["next_cursor"], "sort": "-stage"})
    assert r.status_code == 422
    assert "sort=stage" in r.json()["detail"]
    for limit in (0, 501):
        r = await client.get("/leads", params={"limit": limit})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "limit"
    r = await client.get("/leads", params={"sort": "phone"})
    assert r.status_code == 422
    r = await client.get("/leads", params={"start_date": "2026-13-01"})
    assert r.json()["errors"][0]["field"] == "start_date"


async def test_lead_timeline_is_oldest_first_with_the_conversion(
    client: httpx.AsyncClient,
) -> None:
    ids = await funnel_data.load(client)
    r = await client.get(f"/leads/{ids['ana@example.com']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == "ana@example.com"
    assert body["stage"] == 6
    kinds = [
        (item["kind"], item.get("event_type") or item.get("conversion_type"))
        for item in body["timeline"]
    ]
    assert kinds == [
        ("event", "webinar_registered"),
        ("event", "webinar_attended"),
        ("event", "signup_started"),
        ("event", "signup_completed"),
        ("event", "converted"),
        ("conversion", "subscription"),
    ]
    times = [datetime.fromisoformat(item["occurred_at"]) for item in body["timeline"]]
    assert times == sorted(times)
    conversion = body["timeline"][-1]
    assert conversion["value"] == "49.00"
    assert conversion["first_touch_source_type"] == "zoom"
    assert conversion["days_to_conversion"] == 9

    dev = (await client.get(f"/leads/{ids['dev@example.com']}")).json()
    assert [item["source_type"] for item in dev["timeline"]] == [
        "referral",
        "easyappointments",
        "easyappointments",
    ]


async def test_unknown_lead_is_404_and_leads_need_a_token(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    r = await client.get("/leads/987654")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    assert (await anon_client.get("/leads")).status_code == 401
    assert (await anon_client.get("/leads/1")).status_code == 401


@pytest.mark.parametrize("sort", [s.value for s in LeadSort])
async def test_every_sort_pages_forward_and_back_through_everyone(
    client: httpx.AsyncClient, sort: str
) -> None:
    """Issue 18, point 15: sort by any column, page both ways, nobody twice or missed."""
    await funnel_data.load(client)
    everyone = (await client.get("/leads", params={"limit": 500, "sort": sort})).json()["items"]
    assert len(everyone) == len(funnel_data.EXPECTED)
    key = LeadSort(sort).key
    pages: list[list[int]] = []
    params: dict[str, object] = {"limit": 2, "sort": sort}
    page = (await client.get("/leads", params=params)).json()
    assert page["prev_cursor"] is None
    while True:
        pages.append([lead["id"] for lead in page["items"]])
        if page["next_cursor"] is None:
            break
        page = (await client.get("/leads", params={**params, "cursor": page["next_cursor"]})).json()
    assert [i for p in pages for i in p] == [lead["id"] for lead in everyone]
    # And back from the last page to the first, the same pages in reverse.
    back = [pages[-1]]
    while page["prev_cursor"] is not None:
        page = (await client.get("/leads", params={**params, "cursor": page["prev_cursor"]})).json()
        back.append([lead["id"] for lead in page["items"]])
    assert back == pages[::-1]
    if key in ("email", "first_touch_source_type", "first_touch_utm_campaign"):
        values = [lead[key] or "" for lead in everyone]
        assert values == sorted(values, reverse=sort.startswith("-"))
