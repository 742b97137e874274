"""GET /analytics/funnel-metrics on a data set whose every number is computed by hand.

People (all times 10:00 UTC):
  L1 a: zoom webinar_registered Jan 5 (c1/s1), attended Jan 6, signup_started Jan 7,
        signup_completed Jan 8, converted Jan 10              -> stage 6, 5 days
  L2 b: zoom webinar_registered Jan 10 (c1), attended Jan 12   -> stage 3
  L3 c: eventbrite event_registered Jan 15 (c2/s2), converted Jan 25 -> stage 6, 10 days
  L4 d: manual lead_captured Feb 1                             -> stage 1
  L5 e: eventbrite event_registered Feb 10 (c2), attended Feb 11, signup_started Feb 12 -> 4
  L6 f: referral referral_received Dec 20 2025, converted Jan 3 2026 -> stage 6, 14 days
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import event, post_event


async def _build(client: httpx.AsyncClient) -> None:
    rows = [
        (
            "a",
            "zoom",
            "webinar_registered",
            "2026-01-05",
            {"utm_campaign": "c1", "utm_source": "s1"},
        ),
        ("a", "zoom", "webinar_attended", "2026-01-06", {}),
        ("a", "direct_signup", "signup_started", "2026-01-07", {}),
        ("a", "direct_signup", "signup_completed", "2026-01-08", {}),
        ("b", "zoom", "webinar_registered", "2026-01-10", {"utm_campaign": "c1"}),
        ("b", "zoom", "webinar_attended", "2026-01-12", {}),
        (
            "c",
            "eventbrite",
            "event_registered",
            "2026-01-15",
            {"utm_campaign": "c2", "utm_source": "s2"},
        ),
        ("d", "manual", "lead_captured", "2026-02-01", {}),
        ("e", "eventbrite", "event_registered", "2026-02-10", {"utm_campaign": "C2"}),
        ("e", "eventbrite", "event_attended", "2026-02-11", {}),
        ("e", "direct_signup", "signup_started", "2026-02-12", {}),
        ("f", "referral", "referral_received", "2025-12-20", {}),
    ]
    for who, source, kind, day, extra in rows:
        await post_event(
            client, event(f"{who}@example.com", source, kind, f"{day}T10:00:00Z", **extra)
        )
    for who, day in (("a", "2026-01-10"), ("c", "2026-01-25"), ("f", "2026-01-03")):
        r = await client.post(
            "/funnel/conversion",
            json={"email": f"{who}@example.com", "converted_at": f"{day}T10:00:00Z"},
        )
        assert r.status_code == 201


def _stages(body: dict) -> list[tuple[int, int, float, float]]:
    return [
        (s["stage"], s["leads"], s["rate_from_previous"], s["rate_from_start"])
        for s in body["stages"]
    ]


async def test_all_time(client: httpx.AsyncClient) -> None:
    await _build(client)
    r = await client.get("/analytics/funnel-metrics")
    assert r.status_code == 200
    m = r.json()
    assert m["total_leads"] == 6
    assert m["total_conversions"] == 3
    assert m["conversion_rate"] == 0.5
    assert _stages(m) == [
        (1, 6, 1.0, 1.0),
        (2, 5, 0.8333, 0.8333),
        (3, 5, 1.0, 0.8333),
        (4, 4, 0.8, 0.6667),
        (5, 3, 0.75, 0.5),
        (6, 3, 1.0, 0.5),
    ]
    assert [s["name"] for s in m["stages"]] == [
        "lead",
        "engaged",
        "attended",
        "signup_started",
        "signed_up",
        "converted",
    ]
    assert m["group_by"] == "source_type"
    assert [
        (g["group"], g["leads"], g["conversions"], g["conversion_rate"]) for g in m["groups"]
    ] == [
        ("eventbrite", 2, 1, 0.5),
        ("zoom", 2, 1, 0.5),
        ("referral", 1, 1, 1.0),  # same size as manual, more attributed conversions
        ("manual", 1, 0, 0.0),
    ]
    assert m["median_days_to_conversion"] == 10.0
    assert m["event_counts"] == {
        "lead_captured": 1,
        "referral_received": 1,
        "appointment_booked": 0,
        "webinar_registered": 2,
        "event_registered": 2,
        "appointment_completed": 0,
        "webinar_attended": 2,
        "event_attended": 1,
        "signup_started": 2,
        "signup_completed": 1,
        "converted": 3,
    }


async def test_january_cohort(client: httpx.AsyncClient) -> None:
    await _build(client)
    m = (
        await client.get(
            "/analytics/funnel-metrics",
            params={"start_date": "2026-01-01", "end_date": "2026-01-31"},
        )
    ).json()
    assert m["total_leads"] == 3  # L1, L2, L3 (L6 first came in December)
    assert m["total_conversions"] == 2
    assert m["conversion_rate"] == 0.6667
    assert [s["leads"] for s in m["stages"]] == [3, 3, 3, 2, 2, 2]
    assert m["median_days_to_conversion"] == 7.5
    counts = {k: v for k, v in m["event_counts"].items() if v}
    assert counts == {
        "webinar_registered": 2,
        "webinar_attended": 2,
        "signup_started": 1,
        "signup_completed": 1,
        "event_registered": 1,
        "converted": 3,
    }


async def test_date_end_includes_the_whole_day_and_datetime_end_is_exact(
    client: httpx.AsyncClient,
) -> None:
    await _build(client)
    whole_day = (
        await client.get(
            "/analytics/funnel-metrics",
            params={"start_date": "2026-01-01", "end_date": "2026-01-15"},
        )
    ).json()
    assert whole_day["total_leads"] == 3
    before = (
        await client.get(
            "/analytics/funnel-metrics",
            params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-01-15T09:59:59Z"},
        )
    ).json()
    assert before["total_leads"] == 2


async def test_filters_narrow_the_cohort_by_first_touch(client: httpx.AsyncClient) -> None:
    await _build(client)
    m = (await client.get("/analytics/funnel-metrics", params={"source_type": "eventbrite"})).json()
    assert (m["total_leads"], m["total_conversions"]) == (2, 1)
    m = (await client.get("/analytics/funnel-metrics", params={"utm_campaign": "C2"})).json()
    assert (m["total_leads"], m["total_conversions"]) == (2, 1)
    assert m["filters"] == {"utm_campaign": "c2"}


async def test_group_by_campaign(client: httpx.AsyncClient) -> None:
    await _build(client)
    m = (await client.get("/analytics/funnel-metrics", params={"group_by": "utm_campaign"})).json()
    groups = {g["group"]: (g["leads"], g["conversions"]) for g in m["groups"]}
    assert groups == {"c1": (2, 1), "c2": (2, 1), None: (2, 1)}
    m = (await client.get("/analytics/funnel-metrics", params={"group_by": "utm_source"})).json()
    groups = {g["group"]: (g["leads"], g["conversions"]) for g in m["groups"]}
    assert groups == {"s1": (1, 1), "s2": (1, 1), None: (4, 1)}


async def test_empty_database_gives_zeros_not_errors(client: httpx.AsyncClient) -> None:
    m = (await client.get("/analytics/funnel-metrics")).json()
    assert m["total_leads"] == 0
    assert m["conversion_rate"] == 0.0
    assert all(s["leads"] == 0 and s["rate_from_previous"] == 0.0 for s in m["stages"])
    assert m["groups"] == []
    assert m["median_days_to_conversion"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_date": "2026-02-01", "end_date": "2026-01-01"}, "start_date"),
        ({"start_date": "01/02/2026"}, "start_date"),
        ({"end_date": "2026-13-01"}, "end_date"),
        ({"group_by": "color"}, "group_by"),
        ({"source_type": "myspace"}, "source_type"),
    ],
)
async def test_bad_parameters_are_422(client: httpx.AsyncClient, params: dict, field: str) -> None:
    r = await client.get("/analytics/funnel-metrics", params=params)
    assert r.status_code == 422
    assert field in {e["field"] for e in r.json()["errors"]}
