"""POST /funnel/conversion freezes per-model credits; ingestion stores channels and the
lead's first-touch channel, item and stage times."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from signup_sync.db.models import AttributionCredit, FunnelEvent, Lead
from tests.analytics_journeys import build


async def test_conversion_response_lists_touchpoints_with_credits(
    client: httpx.AsyncClient,
) -> None:
    conversions = await build(client)
    alice = conversions["alice"]
    assert alice["total_touchpoints"] == 4
    assert alice["half_life_days"] == 7
    touches = alice["touchpoints"]
    assert [t["channel"] for t in touches] == ["Paid Search", "Webinars", "Webinars", "Direct"]
    assert touches[1]["item"] == "webinar:w1"
    assert touches[1]["item_name"] == "Intro Webinar"
    linear = [t["credits"]["linear"] for t in touches]
    assert linear == ["0.250000"] * 4
    assert [t["credits"]["position_based"] for t in touches] == [
        "0.400000",
        "0.100000",
        "0.100000",
        "0.400000",
    ]
    assert [t["credits"]["last_non_direct"] for t in touches] == [
        "0.000000",
        "0.000000",
        "1.000000",
        "0.000000",
    ]
    assert [t["value_shares"]["linear"] for t in touches] == ["25.00"] * 4
    for model in ("first_touch", "last_touch", "last_non_direct", "linear", "time_decay"):
        assert sum(float(t["credits"][model]) for t in touches) == 1.0
    assert alice["first_touch"]["channel"] == "Paid Search"
    assert conversions["carol"]["touchpoints"][0]["value_shares"] is None

    # A repeat returns the stored attribution unchanged.
    r = await client.post(
        "/funnel/conversion",
        json={"email": "alice@ex.com", "converted_at": "2026-02-01T00:00:00Z"},
    )
    assert r.status_code == 200
    assert r.json()["touchpoints"] == touches


async def test_credits_are_stored_as_rows_summing_exactly(
    client: httpx.AsyncClient, session_factory: Any
) -> None:
    await build(client)
    async with session_factory() as session:
        rows = (await session.execute(select(AttributionCredit))).scalars().all()
    by_conversion: dict[tuple[int, str], tuple[int, int]] = {}
    for row in rows:
        micros, cents = by_conversion.get((row.conversion_id, row.model), (0, 0))
        by_conversion[(row.conversion_id, row.model)] = (
            micros + row.credit_micros,
            cents + (row.value_cents or 0),
        )
        assert row.credit_micros > 0  # zero credits are not stored
    assert {micros for micros, _ in by_conversion.values()} == {1_000_000}
    # 4 conversions x 6 models
    assert len(by_conversion) == 24
    assert sorted({cents for _, cents in by_conversion.values()}) == [0, 1000, 5000, 10000]


async def test_ingest_stores_channels_item_and_stage_times(
    client: httpx.AsyncClient, session_factory: Any
) -> None:
    await build(client)
    async with session_factory() as session:
        events = (
            await session.execute(
                select(FunnelEvent.event_type, FunnelEvent.channel)
                .join(Lead, Lead.id == FunnelEvent.lead_id)
                .where(Lead.email == "alice@ex.com")
                .order_by(FunnelEvent.occurred_at, FunnelEvent.id)
            )
        ).all()
        bob = (await session.execute(select(Lead).where(Lead.email == "bob@ex.com"))).scalar_one()
    assert [tuple(e) for e in events] == [
        ("lead_captured", "Paid Search"),
        ("webinar_registered", "Webinars"),
        ("webinar_attended", "Webinars"),
        ("signup_completed", "Direct"),
        ("converted", "Direct"),
    ]
    assert bob.first_touch_channel == "Appointments"
    assert (bob.first_touch_item, bob.first_touch_item_name) == (
        "appointment:svc-3",
        "Consultation",
    )
    stage_days = [getattr(bob, f"stage_{n}_at").strftime("%m-%d %H") for n in range(1, 7)]
    assert stage_days == ["01-10 00", "01-10 00", "01-12 00", "01-30 12", "01-30 12", "01-30 12"]


async def test_an_earlier_event_arriving_later_moves_the_first_touch(
    client: httpx.AsyncClient, session_factory: Any
) -> None:
    for body in (
        {"source_type": "zoom", "event_type": "webinar_registered", "occurred_at": "2026-01-09"},
        {
            "source_type": "direct_signup",
            "event_type": "lead_captured",
            "occurred_at": "2026-01-02",
            "utm_source": "linkedin",
            "utm_medium": "paid",
        },
        {"source_type": "zoom", "event_type": "webinar_attended", "occurred_at": "2026-01-20"},
    ):
        body["email"] = "yan@ex.com"
        body["occurred_at"] = f"{body['occurred_at']}T00:00:00Z"
        r = await client.post("/funnel/event", json=body)
        assert r.status_code == 201
    async with session_factory() as session:
        lead = (await session.execute(select(Lead).where(Lead.email == "yan@ex.com"))).scalar_one()
    assert lead.first_touch_channel == "Paid Social"
    assert lead.first_touch_item is None
    assert lead.stage_1_at.day == 2
    assert lead.stage_2_at.day == 9
    assert lead.stage_3_at.day == 20
    assert lead.stage_4_at is None


async def test_a_new_conversion_answers_what_its_stored_document_answers(
    client: httpx.AsyncClient, session_factory: Any
) -> None:
    """The first answer is made from the computed credits, a repeat's from the stored
    document: the same touchpoints (microseconds, metadata items, no UTMs,
    zero and whole credits, value shares), and the rows hold the same credits."""
    email = "mia@ex.com"
    times = ["2026-01-02T03:04:05.678901Z", "2026-01-09T00:00:00Z", "2026-01-09T00:00:00Z"]
    for i, at in enumerate(times):
        body: dict[str, Any] = {
            "email": email,
            "source_type": "zoom" if i else "direct_signup",
            "event_type": "webinar_registered" if i else "lead_captured",
            "occurred_at": at,
            "external_id": f"mia-{i}",
        }
        if i == 1:
            body["metadata"] = {"item": {"kind": "webinar", "id": "w9", "name": "Deep dive"}}
            body["utm_source"] = "newsletter"
        r = await client.post("/funnel/event", json=body)
        assert r.status_code == 201, r.text
    conversion = {
        "email": email,
        "converted_at": "2026-01-20T10:00:00.5Z",
        "value": "10.01",
        "half_life_days": 3,
    }
    first = await client.post("/funnel/conversion", json=conversion)
    assert first.status_code == 201, first.text
    again = await client.post("/funnel/conversion", json=conversion)
    assert again.status_code == 200
    new, stored = first.json(), again.json()
    assert new["touchpoints"] == stored["touchpoints"]
    assert {k: v for k, v in new.items() if k not in ("duplicate", "message")} == {
        k: v for k, v in stored.items() if k not in ("duplicate", "message")
    }
    touches = new["touchpoints"]
    assert touches[0]["occurred_at"] == "2026-01-02T03:04:05.678901Z"
    assert touches[1]["item"] == "webinar:w9"
    assert [t["credits"]["first_touch"] for t in touches] == ["1.000000", "0.000000", "0.000000"]
    # The two touchpoints of the same moment share time decay equally (a left-over
    # millionth goes to the later one).
    decay = [int(t["credits"]["time_decay"].replace(".", "")) for t in touches]
    assert decay[2] - decay[1] in (0, 1)
    assert sum(decay) == 1_000_000
    async with session_factory() as session:
        rows = (
            (await session.execute(select(AttributionCredit).order_by(AttributionCredit.id)))
            .scalars()
            .all()
        )
    by_touch: dict[tuple[int, str], tuple[int, int | None]] = {
        (r.position, r.model): (r.credit_micros, r.value_cents) for r in rows
    }
    for position, touch in enumerate(touches):
        for model, credit in touch["credits"].items():
            micros = round(float(credit) * 1_000_000)
            if micros:
                cents = round(float(touch["value_shares"][model]) * 100)
                assert by_touch[(position, model)] == (micros, cents)
            else:
                assert (position, model) not in by_touch
    # Ids follow the touchpoints, then the models, in order.
    assert [(r.position, r.model) for r in rows] == sorted(
        ((r.position, r.model) for r in rows),
        key=lambda pm: (pm[0], list(touches[0]["credits"]).index(pm[1])),
    )
