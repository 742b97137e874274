"""Every dashboard group links to exactly the people it counts; listings refuse unknown filters.

Issue 14 (point 4): a campaign of 316 leads linked to 323 people (stage-0 people included),
only two groupings linked at all, and ``/leads?channel=…`` answered everyone.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from signup_sync.analytics.schemas import GroupBy
from signup_sync.attribution.models import AttributionModel
from tests import funnel_data
from tests.conftest import TOKEN
from tests.sources.test_poshvip import EXPORT, TZ

ROW = re.compile(
    r'<tr data-group="(?P<group>[^"]*)">\s*<td><a href="(?P<href>[^"]+)">.*?</a></td>\s*'
    r'<td class="num" data-field="leads" data-value="(?P<leads>\d+)"',
    re.S,
)


async def _load(client: httpx.AsyncClient) -> None:
    await funnel_data.load(client)
    # Posh.VIP's export adds pending, refunded and cancelled orders: people at stage 0.
    r = await client.post(
        "/sources", json={"source_type": "poshvip", "name": "P", "config": {"timezone": TZ}}
    )
    assert r.status_code == 201, r.text
    r = await client.post("/sync/poshvip", files={"file": ("p.csv", EXPORT, "text/csv")})
    assert r.status_code == 200, r.text


async def _people(client: httpx.AsyncClient, href: str) -> list[dict[str, object]]:
    """The people behind a dashboard link, read through the API with the same filters."""
    parts = urlsplit(html.unescape(href))
    assert parts.path == "/dashboard/leads"
    params = dict(parse_qsl(parts.query))
    page = await client.get("/dashboard/leads", params=params)
    assert page.status_code == 200, page.text
    r = await client.get("/leads", params={**params, "limit": 500})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return list(r.json()["items"])


@pytest.mark.parametrize("model", [m.value for m in AttributionModel])
async def test_every_group_links_to_exactly_its_people(
    client: httpx.AsyncClient, model: str
) -> None:
    await _load(client)
    signed = await client.post("/dashboard/login", data={"token": TOKEN, "next": ""})
    assert signed.status_code == 303
    stage_zero = [
        lead
        for lead in (await client.get("/leads", params={"limit": 500})).json()["items"]
        if lead["stage"] == 0
    ]
    assert stage_zero, "the data set must hold people the group counts leave out"
    for group_by in GroupBy:
        page = await client.get("/dashboard", params={"group_by": group_by.value, "model": model})
        assert page.status_code == 200, page.text
        rows = list(ROW.finditer(page.text))
        groups = page.text.count("<tr data-group=")
        assert rows and len(rows) == groups, f"{group_by}: every group row has a link"
        total = 0
        for row in rows:
            people = await _people(client, row["href"])
            assert len(people) == int(row["leads"]), (group_by.value, row["group"])
            assert all(int(str(p["stage"])) >= 1 for p in people)
            total += len(people)
        metrics = (
            await client.get("/analytics/funnel-metrics", params={"group_by": group_by.value})
        ).json()
        assert total == metrics["stages"][0]["leads"], group_by.value


async def test_leads_filter_by_every_first_touch_dimension(client: httpx.AsyncClient) -> None:
    await funnel_data.load(client)
    everyone = (await client.get("/leads", params={"limit": 500})).json()["items"]
    ana = next(p for p in everyone if p["email"] == "ana@example.com")
    assert ana["first_touch_channel"] == "Paid Search"
    for name, field in (
        ("channel", "first_touch_channel"),
        ("utm_source", "first_touch_utm_source"),
        ("utm_medium", "first_touch_utm_medium"),
        ("utm_campaign", "first_touch_utm_campaign"),
        ("item", "first_touch_item"),
        ("source_type", "first_touch_source_type"),
    ):
        for value in {p[field] for p in everyone}:
            expected = sorted(p["id"] for p in everyone if p[field] == value)
            query = "(none)" if value is None else value
            r = await client.get("/leads", params={name: query, "limit": 500})
            assert r.status_code == 200, (name, r.text)
            assert sorted(p["id"] for p in r.json()["items"]) == expected, (name, value)
    june = (await client.get("/leads", params={"cohort_month": "2026-06", "limit": 500})).json()
    assert sorted(p["email"] for p in june["items"]) == [
        "ana@example.com", "ben@example.com", "cara@example.com",
    ]  # fmt: skip


async def test_the_timeline_carries_each_events_channel(client: httpx.AsyncClient) -> None:
    ids = await funnel_data.load(client)
    lead = (await client.get(f"/leads/{ids['ana@example.com']}")).json()
    channels = [item.get("channel") for item in lead["timeline"] if item["kind"] == "event"]
    assert channels[0] == "Paid Search"
    assert all(channels)


@pytest.mark.parametrize(
    "path",
    [
        "/leads",
        "/export/leads.csv",
        "/analytics/funnel-metrics",
        "/sources",
        "/sync/status/zoom",
        "/tracking/stats",
    ],
)
async def test_an_unknown_query_parameter_is_named(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path, params={"chanel": "Email"})
    assert r.status_code == 422, (path, r.text)
    assert "chanel" in r.text
    assert (await client.get(path)).status_code == 200
