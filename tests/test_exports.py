"""GET /export/{leads,events,conversions}.csv: streamed CSV with the filters of GET /leads."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from fastapi import FastAPI

from signup_sync.exports.service import ExportKind, cell, csv_chunks
from signup_sync.leads.schemas import LeadFilter
from tests import funnel_data


async def _csv(client: httpx.AsyncClient, kind: str, **params: Any) -> list[dict[str, str]]:
    r = await client.get(f"/export/{kind}.csv", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f'filename="{kind}-' in r.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_leads_csv_has_the_exact_rows(client: httpx.AsyncClient) -> None:
    ids = await funnel_data.load(client)
    rows = await _csv(client, "leads", utm_campaign="spring")
    assert rows == [
        {
            "id": str(ids["ana@example.com"]),
            "email": "ana@example.com",
            "phone": "",
            "first_name": "Ana",
            "last_name": "Núñez",
            "company": "",
            "stage": "6",
            "stage_name": "converted",
            "first_seen_at": "2026-06-01T10:00:00+00:00",
            "last_seen_at": "2026-06-10T10:00:00+00:00",
            "first_touch_source_type": "zoom",
            "first_touch_channel": "Paid Search",
            "first_touch_utm_source": "google",
            "first_touch_utm_medium": "cpc",
            "first_touch_utm_campaign": "spring",
            "converted_at": "2026-06-10T10:00:00+00:00",
        },
        {
            "id": str(ids["cara@example.com"]),
            "email": "cara@example.com",
            "phone": "+1 (555) 010-0200",  # a phone number is data, not a formula
            "first_name": '\'=HYPERLINK("x")',  # a formula is defused
            "last_name": "",
            "company": "",
            "stage": "1",
            "stage_name": "lead",
            "first_seen_at": "2026-06-05T09:00:00+00:00",
            "last_seen_at": "2026-06-05T09:00:00+00:00",
            "first_touch_source_type": "manual",
            "first_touch_channel": "Unassigned",
            "first_touch_utm_source": "newsletter",
            "first_touch_utm_medium": "",
            "first_touch_utm_campaign": "spring",
            "converted_at": "",
        },
        {
            "id": str(ids["fay@example.com"]),
            "email": "fay@example.com",
            "phone": "",
            "first_name": "",
            "last_name": "",
            "company": "",
            "stage": "3",
            "stage_name": "attended",
            "first_seen_at": "2026-08-01T10:00:00+00:00",
            "last_seen_at": "2026-08-01T12:00:00+00:00",
            "first_touch_source_type": "zoom",
            "first_touch_channel": "Organic Search",
            "first_touch_utm_source": "google",
            "first_touch_utm_medium": "",
            "first_touch_utm_campaign": "spring",
            "converted_at": "",
        },
    ]
    everyone = await _csv(client, "leads")
    assert {row["email"] for row in everyone} == set(funnel_data.EXPECTED)


async def test_events_csv_has_the_events_of_the_filtered_leads(
    client: httpx.AsyncClient,
) -> None:
    ids = await funnel_data.load(client)
    rows = await _csv(client, "events", source_type="referral")
    assert [(r["email"], r["source_type"], r["event_type"], r["stage"]) for r in rows] == [
        ("dev@example.com", "referral", "referral_received", "1"),
        ("dev@example.com", "easyappointments", "appointment_booked", "2"),
        ("dev@example.com", "easyappointments", "appointment_completed", "3"),
    ]
    booked = rows[1]
    assert booked["lead_id"] == str(ids["dev@example.com"])
    assert booked["occurred_at"] == "2026-07-02T08:00:00+00:00"
    assert booked["external_id"] == "dev@example.com:appointment_booked"
    assert booked["utm_campaign"] == "summer"
    assert booked["status"] == "active"
    assert list(rows[0])[:3] == ["id", "lead_id", "email"]
    assert len(await _csv(client, "events")) == len(funnel_data.EVENTS) + 1  # + converted


async def test_conversions_csv_round_trips(client: httpx.AsyncClient) -> None:
    ids = await funnel_data.load(client)
    [row] = await _csv(client, "conversions")
    assert row == {
        "id": row["id"],
        "lead_id": str(ids["ana@example.com"]),
        "email": "ana@example.com",
        "user_id": "user_ana",
        "conversion_type": "subscription",
        "value": "49.00",
        "currency": "USD",
        "converted_at": "2026-06-10T10:00:00+00:00",
        "lookback_days": "90",
        "first_touch_source_type": "zoom",
        "first_touch_at": "2026-06-01T10:00:00+00:00",
        "last_touch_source_type": "direct_signup",
        "last_touch_at": "2026-06-04T10:00:00+00:00",
        "days_to_conversion": "9",
        "total_touchpoints": "4",
    }
    assert await _csv(client, "conversions", source_type="manual") == []


async def test_exports_stream_in_batches_and_need_a_token(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, app: FastAPI
) -> None:
    await funnel_data.load(client)
    factory = app.state.session_factory
    chunks = [c async for c in csv_chunks(factory, ExportKind.EVENTS, LeadFilter(), batch_rows=3)]
    # Header, then 14 events in batches of 3: five data chunks.
    assert len(chunks) == 1 + 5
    whole = (await client.get("/export/events.csv")).text
    assert "".join(chunks) == whole
    assert (await anon_client.get("/export/leads.csv")).status_code == 401
    assert (await client.get("/export/people.csv")).status_code == 422
    r = await client.get("/export/leads.csv", params={"min_stage": 9})
    assert r.status_code == 422


def test_cells_defuse_formulas_but_keep_numbers() -> None:
    assert cell("=1+1") == "'=1+1"
    assert cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell("-2+3") == "'-2+3"  # Excel would compute it
    assert cell("-42") == "-42"
    assert cell("-cmd|x") == "'-cmd|x"
    assert cell("+44 20 7946 0000") == "+44 20 7946 0000"
    assert cell(None) == ""
    assert cell({"a": "é"}) == '{"a":"é"}'
