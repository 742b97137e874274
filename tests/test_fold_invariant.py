"""Every lead row equals the fold of its events, whatever history produced them.

Hypothesis generates multi-source histories (API events, batches, CSV imports, Posh.VIP
exports whose orders change status both ways, /v1 page views and identifies, erasures,
repeats) and sends them through the real endpoints, in-process, on both backends. After
each history every lead row is compared with a reference fold written plainly here from
the lead's stored events, the stored events with a model of what should be stored, and
(PostgreSQL) the rollups with a recomputation from scratch.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.analytics import rollup
from signup_sync.db.models import Base, FunnelEvent, Lead
from signup_sync.db.session import create_session_factory
from signup_sync.settings import Settings, load_settings
from tests.conftest import TOKEN

WRITE_KEY = "wk-fold-invariant-01"
PEOPLE = [f"p{i}@example.com" for i in range(4)]
ANONS = [f"anon-{i}" for i in range(3)]  # anon-i is always identified as PEOPLE[i]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TYPES = [
    "lead_captured", "referral_received", "appointment_booked", "webinar_registered",
    "event_registered", "webinar_attended", "signup_started", "signup_completed", "converted",
]  # fmt: skip
POSH_STATUS = {
    "approved": "active", "pending": "pending", "refunded": "refunded",
    "cancelled": "cancelled", "denied": "denied",
}  # fmt: skip
POSH_HEADER = (
    "order_number,ticket_id,event_name,event_date,first_name,last_name,email,phone,ticket_type,"
    "quantity,total_paid,currency,order_status,checked_in,tracking_link,host,kickback_referrer,"
    "purchased_at"
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        service_tokens=TOKEN,
        auto_migrate=False,
        sync_scheduler_enabled=False,
        segment_write_keys=WRITE_KEY,
    )


def _at(hours: int) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


async def _truncate(engine: AsyncEngine) -> None:
    """Every table but the privacy hash key, which the running app keeps in memory."""
    tables = [
        t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "privacy_hash_keys"
    ]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


# --- generated steps ---------------------------------------------------------------------

items = st.fixed_dictionaries(
    {
        "person": st.integers(0, len(PEOPLE) - 1),
        "event_type": st.sampled_from(TYPES),
        "hours": st.integers(0, 30),
        "utm_source": st.sampled_from([None, "google", "newsletter"]),
        "ext": st.sampled_from([None, "a", "b", "c"]),
        "first_name": st.sampled_from([None, "Ann", "Bob"]),
        "source_type": st.sampled_from(["manual", "referral"]),
    }
)
orders = st.fixed_dictionaries(
    {
        "order": st.integers(0, 4),
        "person": st.integers(0, len(PEOPLE) - 1),
        "status": st.sampled_from(sorted(POSH_STATUS)),
        "hours": st.integers(0, 30),
        "checked_in": st.booleans(),
        "first_name": st.sampled_from([None, "Cy", "Di"]),
    }
)
steps = st.one_of(
    st.tuples(st.just("event"), items),
    st.tuples(st.just("batch"), st.lists(items, min_size=1, max_size=5)),
    st.tuples(st.just("csv"), st.lists(items, min_size=1, max_size=4)),
    st.tuples(st.just("posh"), st.lists(orders, min_size=1, max_size=4)),
    st.tuples(
        st.just("page"),
        st.fixed_dictionaries(
            {"anon": st.integers(0, len(ANONS) - 1), "hours": st.integers(0, 30)}
        ),
    ),
    st.tuples(st.just("identify"), st.integers(0, len(ANONS) - 1)),
    st.tuples(st.just("erase"), st.integers(0, len(PEOPLE) - 1)),
)


# --- the model: which events should be stored, and the names -------------------------------


@dataclass
class Model:
    """What the service should hold: per event key its email and current status."""

    events: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    unkeyed: list[tuple[str, str]] = field(default_factory=list)  # (email, event_type)
    names: dict[str, str | None] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    pages: dict[int, list[str]] = field(default_factory=dict)  # anon -> page message ids
    identified: set[int] = field(default_factory=set)

    def arrive(
        self, email: str, key: tuple[str, str, str] | None, status: str, name: str | None
    ) -> None:
        if email in self.erased:
            return
        if key is not None and key in self.events:
            self.events[key][1] = status  # a repeat changes the stored status only
            return
        if key is None:
            self.unkeyed.append((email, "?"))
        else:
            self.events[key] = [email, status]
        if self.names.get(email) is None:
            self.names[email] = name

    def erase(self, email: str) -> None:
        self.erased.add(email)
        self.events = {k: v for k, v in self.events.items() if v[0] != email}
        self.unkeyed = [u for u in self.unkeyed if u[0] != email]
        self.names.pop(email, None)


def _item_record(item: dict[str, Any]) -> dict[str, Any]:
    body = {
        "source_type": item["source_type"],
        "event_type": item["event_type"],
        "email": PEOPLE[item["person"]],
        "occurred_at": _at(item["hours"]),
    }
    for name in ("utm_source", "first_name"):
        if item[name] is not None:
            body[name] = item[name]
    if item["ext"] is not None:
        body["external_id"] = f"{item['ext']}-{item['person']}"
    return body


def _arrive_item(model: Model, body: dict[str, Any]) -> None:
    ext = body.get("external_id")
    key = (body["source_type"], ext, body["event_type"]) if ext else None
    model.arrive(body["email"], key, "active", body.get("first_name"))


def _csv(bodies: list[dict[str, Any]]) -> str:
    columns = ["email", "event_type", "occurred_at", "utm_source", "first_name", "external_id"]
    lines = [",".join(columns)]
    for body in bodies:
        lines.append(",".join(str(body.get(c) or "") for c in columns))
    return "\n".join(lines) + "\n"


def _posh_export(model: Model) -> str:
    rows = [POSH_HEADER]
    for number, order in sorted(model.orders.items()):
        rows.append(
            f"PSH-{number},,Gala,2026-03-02 20:00,{order['first_name'] or ''},,"
            f"{PEOPLE[order['person']]},,GA,1,10.00,USD,{order['status']},"
            f"{'yes' if order['checked_in'] else 'no'},link{number},,,{_at(order['hours'])}"
        )
    return "\r\n".join(rows) + "\r\n"


def _arrive_posh(model: Model) -> None:
    for number, order in sorted(model.orders.items()):
        email, status = PEOPLE[order["person"]], POSH_STATUS[order["status"]]
        base = f"posh:order:PSH-{number}"
        model.arrive(email, ("poshvip", base, "event_registered"), status, order["first_name"])
        if order["checked_in"]:
            attended = ("poshvip", f"{base}:attended", "event_attended")
            model.arrive(email, attended, status, order["first_name"])


def _basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


async def _run_step(
    client: httpx.AsyncClient, model: Model, step: tuple[str, Any], n: int, source_id: int
) -> None:
    kind, value = step
    if kind == "event":
        body = _item_record(value)
        r = await client.post("/funnel/event", json=body)
        assert r.status_code in (200, 201), r.text
        _arrive_item(model, body)
    elif kind == "batch":
        bodies = [_item_record(v) for v in value]
        r = await client.post("/funnel/events/batch", json={"events": bodies})
        assert r.status_code == 200, r.text
        for body in bodies:
            _arrive_item(model, body)
    elif kind == "csv":
        # CSV rows without an external id are keyed by a hash of the row: give each one.
        bodies = [
            _item_record({**v, "source_type": "manual", "ext": v["ext"] or "z"}) for v in value
        ]
        r = await client.post(
            "/import/csv",
            content=_csv(bodies).encode(),
            params={"source_type": "manual"},
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["rejected"] == 0, r.text
        for body in bodies:
            _arrive_item(model, body)
    elif kind == "posh":
        for order in value:
            known = model.orders.get(order["order"])
            if known is None:
                model.orders[order["order"]] = dict(order)
            else:  # the same order re-exported: only its status changes
                known["status"] = order["status"]
        r = await client.post(
            "/sync/poshvip",
            params={"source_id": str(source_id), "force_sync": "true"},
            content=_posh_export(model).encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 200 and r.json()["status"] == "success", r.text
        _arrive_posh(model)
    elif kind == "page":
        anon = value["anon"]
        message_id = f"page-{n}"
        page = {
            "type": "page",
            "messageId": message_id,
            "anonymousId": ANONS[anon],
            "timestamp": _at(value["hours"]),
            "properties": {"url": "https://example.com/?utm_source=ads&utm_medium=cpc"},
            "context": {
                "campaign": {"name": f"c{n % 2}", "source": "ads", "medium": "cpc"},
                "page": {"url": "https://example.com/", "referrer": "https://www.google.com/"},
            },
        }
        r = await client.post("/v1/page", json=page, headers=_basic())
        assert r.status_code == 200, r.text
        model.pages.setdefault(anon, []).append(message_id)
        if anon in model.identified:
            _arrive_page(model, anon, message_id)
    elif kind == "identify":
        anon = value
        identify = {
            "type": "identify",
            "messageId": f"identify-{n}",
            "anonymousId": ANONS[anon],
            "traits": {"email": PEOPLE[anon]},
        }
        r = await client.post("/v1/identify", json=identify, headers=_basic())
        assert r.status_code == 200, r.text
        if anon not in model.identified:
            model.identified.add(anon)
            for message_id in model.pages.get(anon, []):
                _arrive_page(model, anon, message_id)
    elif kind == "erase":
        r = await client.post("/privacy/erase", json={"email": PEOPLE[value]})
        assert r.status_code in (200, 202), r.text
        model.erase(PEOPLE[value])


def _arrive_page(model: Model, anon: int, message_id: str) -> None:
    key = ("direct_signup", f"segment:{message_id}", "lead_captured")
    model.arrive(PEOPLE[anon], key, "active", None)


# --- the reference fold, written plainly -----------------------------------------------------


def reference_fold(events: list[FunnelEvent]) -> dict[str, Any]:
    """A lead's folded columns from its events (any order given; arrival = id order)."""
    events = sorted(events, key=lambda e: e.id)
    counting = [e for e in events if e.status == "active"]
    basis = counting if counting else events
    first = min(basis, key=lambda e: (e.occurred_at, e.id))
    item = (first.event_metadata or {}).get("item") if first.event_metadata else None
    item_key = f"{item.get('kind') or 'item'}:{item['id']}" if item and item.get("id") else None
    item_name = item.get("name") if item and item_key else None
    stage = max((e.stage for e in counting), default=0)
    converted = [e.occurred_at for e in counting if e.event_type == "converted"]
    out: dict[str, Any] = {
        "stage": stage,
        "first_seen_at": first.occurred_at,
        "last_seen_at": max(e.occurred_at for e in basis),
        "first_touch_source_type": first.source_type,
        "first_touch_utm_source": first.utm_source,
        "first_touch_utm_medium": first.utm_medium,
        "first_touch_utm_campaign": first.utm_campaign,
        "first_touch_channel": first.channel,
        "first_touch_item": item_key,
        "first_touch_item_name": item_name,
        "converted_at": min(converted) if converted else None,
    }
    for n in range(1, 7):
        reached = [e.occurred_at for e in counting if e.stage >= n]
        out[f"stage_{n}_at"] = min(reached) if reached else None
    return out


async def check_invariant(engine: AsyncEngine, model: Model) -> None:
    async with create_session_factory(engine)() as session:
        leads = list((await session.execute(select(Lead))).scalars())
        events = list((await session.execute(select(FunnelEvent))).scalars())
    by_lead: dict[int, list[FunnelEvent]] = {}
    for event in events:
        by_lead.setdefault(event.lead_id, []).append(event)
    for lead in leads:
        assert lead.id in by_lead, f"lead {lead.email} has no events"
        expected = reference_fold(by_lead[lead.id])
        actual = {name: getattr(lead, name) for name in expected}
        assert actual == expected, (lead.email, by_lead[lead.id])
    # Nothing lost, nothing doubled: the keyed events are exactly the model's.
    email_of = {lead.id: lead.email for lead in leads}
    stored = {
        (e.source_type, e.external_id, e.event_type): [email_of[e.lead_id], e.status]
        for e in events
        if e.external_id is not None
    }
    assert stored == model.events
    assert sum(1 for e in events if e.external_id is None) == len(model.unkeyed)
    assert {lead.email: lead.first_name for lead in leads} == model.names
    assert not {lead.email for lead in leads} & model.erased


async def check_rollups(engine: AsyncEngine) -> None:
    """The rollups kept by triggers equal a recomputation of every day (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return
    tables = [t.name for t in rollup.ROLLUPS]

    async def snapshot() -> dict[str, list[Any]]:
        async with engine.connect() as conn:
            return {
                t: sorted((await conn.execute(text(f"SELECT * FROM {t}"))).all(), key=repr)  # noqa: S608
                for t in tables
            }

    factory = create_session_factory(engine)
    async with factory() as session, session.begin():
        await rollup.refresh(session)
    kept = await snapshot()
    async with factory() as session, session.begin():
        for t in tables:
            await session.execute(text(f"DELETE FROM {t}"))  # noqa: S608
        await session.execute(
            text(
                "INSERT INTO funnel_rollup_dirty (day) SELECT (first_seen_at AT TIME ZONE 'UTC')"
                "::date FROM funnel_leads UNION SELECT (occurred_at AT TIME ZONE 'UTC')::date "
                "FROM funnel_events ON CONFLICT DO NOTHING"
            )
        )
        await rollup.refresh(session)
    assert await snapshot() == kept


@examples(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(steps, min_size=1, max_size=10))
async def test_every_lead_is_the_fold_of_its_events(
    client: httpx.AsyncClient, engine: AsyncEngine, history: list[tuple[str, Any]]
) -> None:
    note(repr(history))
    await _truncate(engine)
    r = await client.post(
        "/sources",
        json={"source_type": "poshvip", "name": "Gala", "config": {"timezone": "UTC"}},
    )
    assert r.status_code == 201, r.text
    source_id = int(r.json()["id"])
    model = Model()
    for n, step in enumerate(history):
        await _run_step(client, model, step, n, source_id)
    await check_invariant(engine, model)
    await check_rollups(engine)


async def _posh(client: httpx.AsyncClient, source_id: int, model: Model) -> None:
    r = await client.post(
        "/sync/poshvip",
        params={"source_id": str(source_id), "force_sync": "true"},
        content=_posh_export(model).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["status"] == "success", r.text


async def _lead(engine: AsyncEngine, email: str) -> Lead:
    async with create_session_factory(engine)() as session:
        return (await session.execute(select(Lead).where(Lead.email == email))).scalar_one()


async def test_an_order_moves_its_lead_both_ways_when_its_status_changes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Finding 1: pending -> approved promotes, approved -> refunded demotes (re-exports)."""
    r = await client.post(
        "/sources", json={"source_type": "poshvip", "name": "Gala", "config": {"timezone": "UTC"}}
    )
    source_id = int(r.json()["id"])
    order = {"person": 0, "status": "pending", "hours": 2, "checked_in": False, "first_name": "Al"}
    model = Model(orders={1: order})
    await _posh(client, source_id, model)
    assert (await _lead(engine, PEOPLE[0])).stage == 0
    order["status"] = "approved"
    await _posh(client, source_id, model)
    lead = await _lead(engine, PEOPLE[0])
    assert (lead.stage, lead.stage_2_at) == (2, T0 + timedelta(hours=2))
    assert (await client.get("/leads", params={"min_stage": 1})).json()["items"][0]["email"] == (
        PEOPLE[0]
    )
    order["status"] = "refunded"
    await _posh(client, source_id, model)
    lead = await _lead(engine, PEOPLE[0])
    assert (lead.stage, lead.stage_1_at, lead.stage_2_at) == (0, None, None)


async def test_a_non_counting_record_never_takes_first_touch(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Finding 8, both halves: an earlier refunded order, a pending order seen first."""
    r = await client.post(
        "/sources", json={"source_type": "poshvip", "name": "Gala", "config": {"timezone": "UTC"}}
    )
    source_id = int(r.json()["id"])
    manual = {
        "source_type": "manual",
        "event_type": "lead_captured",
        "email": PEOPLE[0],
        "occurred_at": _at(10),
        "utm_source": "newsletter",
    }
    assert (await client.post("/funnel/event", json=manual)).status_code == 201
    orders = {
        1: {"person": 0, "status": "refunded", "hours": 1, "checked_in": False, "first_name": None},
        2: {"person": 1, "status": "pending", "hours": 1, "checked_in": False, "first_name": None},
    }
    await _posh(client, source_id, Model(orders=orders))
    lead = await _lead(engine, PEOPLE[0])
    assert (lead.first_seen_at, lead.first_touch_source_type) == (
        T0 + timedelta(hours=10),
        "manual",
    )
    assert lead.first_touch_utm_source == "newsletter"
    later = {**manual, "email": PEOPLE[1], "occurred_at": _at(20)}
    assert (await client.post("/funnel/event", json=later)).status_code == 201
    lead = await _lead(engine, PEOPLE[1])
    assert (lead.stage, lead.first_seen_at, lead.last_seen_at) == (
        1,
        T0 + timedelta(hours=20),
        T0 + timedelta(hours=20),
    )
    assert lead.first_touch_source_type == "manual"
