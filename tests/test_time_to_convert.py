"""GET /analytics/time-to-convert and GET /analytics/stage-transitions on the hand-computed
journeys of tests/analytics_journeys.py."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics_journeys import COHORT, build


async def get(http: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await http.get(f"/analytics/{path}", params={**COHORT, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def counts(histogram: list[dict[str, Any]]) -> dict[tuple[int, int | None], int]:
    return {(b["from_days"], b["to_days"]): b["leads"] for b in histogram if b["leads"]}


async def test_time_to_convert_overall_and_by_channel(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await get(client, "time-to-convert", group_by="channel")
    overall = body["overall"]
    # alice 10, bob 20.5, carol 40 days. Percentiles interpolate at (n - 1) * p:
    # median = 20.5; p75 at 1.5 = 20.5 + 0.5 * 19.5 = 30.25; p90 at 1.8 = 20.5 + 0.8 * 19.5.
    assert overall["converted_leads"] == 3
    assert overall["median_days"] == 20.5
    assert overall["p75_days"] == 30.25
    assert overall["p90_days"] == 36.1
    assert body["bins"] == [1, 2, 3, 7, 14, 30, 60, 90]
    assert len(overall["histogram"]) == 9
    assert overall["histogram"][-1] == {"from_days": 90, "to_days": None, "leads": 0}
    assert counts(overall["histogram"]) == {(7, 14): 1, (14, 30): 1, (30, 60): 1}
    groups = {g["group"]: g for g in body["groups"]}
    assert list(groups) == ["Appointments", "Email", "Paid Search"]
    assert groups["Appointments"]["median_days"] == 20.5
    assert groups["Paid Search"]["p90_days"] == 10.0
    assert counts(groups["Email"]["histogram"]) == {(30, 60): 1}


async def test_time_to_convert_window_bins_and_labels(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await get(client, "time-to-convert", conversion_window_days=30, bins="15,30")
    overall = body["overall"]
    # carol is outside the 30-day window: [10, 20.5] -> median 15.25, p75 17.875, p90 19.45.
    assert overall["converted_leads"] == 2
    assert (overall["median_days"], overall["p75_days"], overall["p90_days"]) == (
        15.25,
        17.875,
        19.45,
    )
    assert overall["histogram"] == [
        {"from_days": 0, "to_days": 15, "leads": 1},
        {"from_days": 15, "to_days": 30, "leads": 1},
        {"from_days": 30, "to_days": None, "leads": 0},
    ]
    assert body["groups"] == []
    body = await get(client, "time-to-convert", group_by="event")
    labels = {g["group"]: (g["label"], g["converted_leads"]) for g in body["groups"]}
    assert labels == {None: (None, 2), "appointment:svc-3": ("Consultation", 1)}


async def test_time_to_convert_on_an_empty_cohort(client: httpx.AsyncClient) -> None:
    body = await get(client, "time-to-convert", group_by="channel")
    assert body["overall"]["converted_leads"] == 0
    assert body["overall"]["median_days"] is None
    assert body["groups"] == []


async def test_stage_transitions(client: httpx.AsyncClient) -> None:
    await build(client)
    body = await get(client, "stage-transitions")
    rows = [
        (t["from_name"], t["to_name"], t["reached"], t["moved_on"], t["rate"], t["median_days"])
        for t in body["transitions"]
    ]
    # lead -> engaged: alice 2 days, bob 0 (booked first), carol 2, erin 0 -> median 1.
    # engaged -> attended: alice 1, bob 2, carol 38 (her conversion on Mar 1) -> 2.
    # attended -> signup started: alice 7, bob 18.5, carol 0 -> 7. Then all at once -> 0.
    assert rows == [
        ("lead", "engaged", 5, 4, 0.8, 1.0),
        ("engaged", "attended", 4, 3, 0.75, 2.0),
        ("attended", "signup_started", 3, 3, 1.0, 7.0),
        ("signup_started", "signed_up", 3, 3, 1.0, 0.0),
        ("signed_up", "converted", 3, 3, 1.0, 0.0),
    ]
    body = await get(client, "stage-transitions", group_by="channel")
    groups = {g["group"]: g["transitions"] for g in body["groups"]}
    assert len(body["transitions"]) == 5
    assert set(groups) == {"Paid Search", "Appointments", "Email", "Organic Search", "Webinars"}
    assert [(t["moved_on"], t["median_days"]) for t in groups["Appointments"]][:3] == [
        (1, 0.0),
        (1, 2.0),
        (1, 18.5),
    ]
    assert groups["Organic Search"][0] == {
        "from_stage": 1,
        "from_name": "lead",
        "to_stage": 2,
        "to_name": "engaged",
        "reached": 1,
        "moved_on": 0,
        "rate": 0.0,
        "median_days": None,
    }


async def test_stage_times_take_the_earliest_event_whatever_the_arrival_order(
    client: httpx.AsyncClient,
) -> None:
    # Sent newest first, in separate requests: the lead's stage times are still the minima.
    for event_type, at in (
        ("webinar_attended", "2026-01-09T00:00:00Z"),
        ("webinar_registered", "2026-01-04T00:00:00Z"),
        ("lead_captured", "2026-01-02T00:00:00Z"),
    ):
        r = await client.post(
            "/funnel/event",
            json={
                "source_type": "zoom" if event_type != "lead_captured" else "manual",
                "event_type": event_type,
                "email": "zed@ex.com",
                "occurred_at": at,
                "external_id": f"x:{event_type}",
            },
        )
        assert r.status_code == 201
    body = await get(client, "stage-transitions")
    medians = [t["median_days"] for t in body["transitions"]][:2]
    assert medians == [2.0, 5.0]
    metrics = await get(client, "funnel-metrics", group_by="channel")
    assert [g["group"] for g in metrics["groups"]] == ["Unassigned"]  # first touch: manual


async def test_bad_bins_name_the_field(client: httpx.AsyncClient) -> None:
    for bins in ("7,3", "0,5", "a,b"):
        r = await client.get("/analytics/time-to-convert", params={"bins": bins})
        assert r.status_code == 422, bins
        assert r.json()["errors"][0]["field"] == "bins"
