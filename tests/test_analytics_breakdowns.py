"""GET /analytics/funnel-metrics: group_by breakdowns, conversion windows and attributed
conversions per model, on the hand-computed journeys of tests/analytics_journeys.py."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics_journeys import COHORT, build


async def metrics(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await http.get("/analytics/funnel-metrics", params={**COHORT, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def table(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            g["group"],
            g["leads"],
            g["conversions"],
            g["attributed_conversions"],
            g["attributed_value"],
        )
        for g in body["groups"]
    ]


async def test_by_channel_with_linear_credits(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await metrics(client, group_by="channel", model="linear")
    # Existing fields keep their meaning: 5 cohort leads (frank is December's), 3 converted.
    assert body["total_leads"] == 5
    assert body["total_conversions"] == 3
    assert [s["leads"] for s in body["stages"]] == [5, 4, 3, 3, 3, 3]
    # Leads by first-touch channel; credits by each touchpoint's channel. alice's 4 touches
    # get 1/4 each (Paid Search, Webinars x2, Direct), bob's 2 both Appointments, carol's 2
    # Email and Events; values follow (alice 100 -> 25/50/25, bob 50, carol none).
    assert table(body) == [
        ("Appointments", 1, 1, 1.0, "50.00"),
        ("Email", 1, 1, 0.5, "0.00"),
        ("Webinars", 1, 0, 0.5, "50.00"),
        ("Paid Search", 1, 1, 0.25, "25.00"),
        ("Organic Search", 1, 0, 0.0, "0.00"),
        ("Events", 0, 0, 0.5, "0.00"),
        ("Direct", 0, 0, 0.25, "25.00"),
    ]
    assert body["attribution"] == {
        "model": "linear",
        "conversion_type": None,
        "conversions": 3,
        "value": "150.00",
        "unattributed_conversions": 0,
        "unattributed_value": "0.00",
    }


async def test_models_move_credit_between_channels(client: httpx.AsyncClient) -> None:
    await build(client)

    async def credited(model: str) -> dict[str, tuple[float, str]]:
        body = await metrics(client, group_by="channel", model=model)
        return {
            g["group"]: (g["attributed_conversions"], g["attributed_value"])
            for g in body["groups"]
            if g["attributed_conversions"]
        }

    assert await credited("first_touch") == {
        "Paid Search": (1.0, "100.00"),
        "Appointments": (1.0, "50.00"),
        "Email": (1.0, "0.00"),
    }
    # The default model is first_touch.
    assert (await metrics(client, group_by="channel"))["attribution"]["model"] == "first_touch"
    assert await credited("last_touch") == {
        "Direct": (1.0, "100.00"),
        "Appointments": (1.0, "50.00"),
        "Events": (1.0, "0.00"),
    }
    # alice's last touch is Direct: the credit goes to the webinar she attended before it.
    assert await credited("last_non_direct") == {
        "Webinars": (1.0, "100.00"),
        "Appointments": (1.0, "50.00"),
        "Events": (1.0, "0.00"),
    }
    # alice: 40% / 10% / 10% / 40%; two touchpoints (bob, carol): 50/50.
    assert await credited("position_based") == {
        "Paid Search": (0.4, "40.00"),
        "Webinars": (0.2, "20.00"),
        "Direct": (0.4, "40.00"),
        "Appointments": (1.0, "50.00"),
        "Email": (0.5, "0.00"),
        "Events": (0.5, "0.00"),
    }
    decay = await credited("time_decay")
    assert round(sum(c for c, _ in decay.values()), 6) == 3.0
    assert sum(float(v) for _, v in decay.values()) == 150.0


async def test_conversion_window(client: httpx.AsyncClient) -> None:
    await build(client)
    # 30 days: carol (40 days) no longer counts, neither as a conversion nor for credits.
    body = await metrics(client, group_by="channel", model="linear", conversion_window_days=30)
    assert body["conversion_window_days"] == 30
    assert body["total_conversions"] == 2
    assert body["stages"][-1]["leads"] == 2
    assert body["stages"][-2]["leads"] == 3  # carol still signed up
    groups = {g["group"]: g for g in body["groups"]}
    assert groups["Email"]["conversions"] == 0
    assert groups["Email"]["attributed_conversions"] == 0.0
    assert "Events" not in groups
    assert body["attribution"]["conversions"] == 2
    # The window is inclusive: alice converted exactly 10 days after her first touch.
    body = await metrics(client, conversion_window_days=10)
    assert body["total_conversions"] == 1
    assert body["attribution"]["conversions"] == 1
    body = await metrics(client, conversion_window_days=9)
    assert body["total_conversions"] == 0


async def test_by_event_item(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await metrics(client, group_by="event", model="linear")
    rows = [
        (g["group"], g["label"], g["leads"], g["conversions"], g["attributed_conversions"])
        for g in body["groups"]
    ]
    # Leads by their first touch's metadata.item (alice, carol and dave have none).
    assert rows == [
        (None, None, 3, 2, 1.0),
        ("appointment:svc-3", "Consultation", 1, 1, 1.0),
        ("webinar:w1", "Intro Webinar", 1, 0, 0.5),
        ("event:e9", "Spring Meetup", 0, 0, 0.5),
    ]


async def test_by_cohort_month_and_utm(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await metrics(client, group_by="cohort_month", model="linear")
    assert table(body) == [("2026-01", 3, 3, 3.0, "150.00"), ("2026-02", 2, 0, 0.0, "0.00")]
    body = await metrics(client, group_by="utm_medium", model="first_touch")
    assert table(body) == [
        (None, 3, 1, 1.0, "50.00"),
        ("cpc", 1, 1, 1.0, "100.00"),
        ("email", 1, 1, 1.0, "0.00"),
    ]
    body = await metrics(client, group_by="utm_campaign", model="linear")
    assert table(body) == [
        (None, 3, 1, 2.25, "125.00"),
        ("spring", 2, 2, 0.75, "25.00"),
    ]
    body = await metrics(client, group_by="source_type", model="last_touch")
    assert [(g["group"], g["attributed_conversions"]) for g in body["groups"]] == [
        ("direct_signup", 1.0),
        ("easyappointments", 1.0),
        ("manual", 0.0),
        ("zoom", 0.0),
        ("eventbrite", 1.0),
    ]


async def test_filters_and_conversion_type(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await metrics(client, group_by="channel", utm_campaign="spring", model="linear")
    assert body["total_leads"] == 2  # alice and carol
    assert body["attribution"]["conversions"] == 2
    body = await metrics(client, conversion_type="purchase")
    assert body["attribution"]["conversions"] == 0
    assert all(g["attributed_conversions"] == 0 for g in body["groups"])
    # Without a window frank (December) is in, with his Referral credit.
    r = await client.get("/analytics/funnel-metrics", params={"group_by": "channel"})
    groups = {g["group"]: g for g in r.json()["groups"]}
    assert groups["Referral"]["attributed_value"] == "10.00"


async def test_conversion_without_touchpoints_is_unattributed(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/funnel/conversion",
        json={"email": "new@ex.com", "converted_at": "2026-01-10T00:00:00Z", "value": "5.00"},
    )
    assert r.status_code == 201
    assert r.json()["touchpoints"] == []
    body = await metrics(client, group_by="channel")
    assert body["attribution"]["conversions"] == 1
    assert body["attribution"]["unattributed_conversions"] == 1
    assert body["attribution"]["unattributed_value"] == "5.00"
    assert body["groups"] == [
        {
            "group": "Direct",
            "label": None,
            "leads": 1,
            "conversions": 1,
            "conversion_rate": 1.0,
            "attributed_conversions": 0.0,
            "attributed_value": "0.00",
        }
    ]


async def test_bad_parameters_name_the_field(client: httpx.AsyncClient) -> None:
    for params, field in (
        ({"model": "data_driven"}, "model"),
        ({"group_by": "planet"}, "group_by"),
        ({"conversion_window_days": "0"}, "conversion_window_days"),
    ):
        r = await client.get("/analytics/funnel-metrics", params=params)
        assert r.status_code == 422, params
        assert field in r.text
