"""Phone-only leads and how a later email joins them (leads.stitching), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.bulk import LeadKeys
from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.db.session import create_session_factory, unit_of_work
from signup_sync.events.records import EventRecord
from signup_sync.events.service import IngestOutcome, ingest
from signup_sync.leads.identity import normalise_phone
from signup_sync.leads.stitching import plan_phone_claims

T0 = datetime(2024, 6, 18, 12, 0, tzinfo=UTC)
PHONE = "+13055550188"


def rec(
    n: int,
    *,
    email: str | None = None,
    phone: str | None = PHONE,
    event_type: str = "event_registered",
    first_name: str | None = None,
) -> EventRecord:
    return EventRecord(
        source_type="poshvip",
        event_type=event_type,
        occurred_at=T0 + timedelta(hours=n),
        email=email,
        phone=phone,
        phone_e164=normalise_phone(phone, "US"),
        first_name=first_name,
        external_id=f"posh:order:{n}",
    )


async def run(engine: AsyncEngine, *records: EventRecord) -> list[IngestOutcome]:
    async with unit_of_work(create_session_factory(engine)) as session:
        return await ingest(session, list(records))


async def leads(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with create_session_factory(engine)() as session:
        rows = await session.execute(
            select(
                Lead.id, Lead.email, Lead.phone, Lead.phone_e164, Lead.first_name, Lead.stage
            ).order_by(Lead.id)
        )
        return [dict(r._mapping) for r in rows.all()]


async def events_of(engine: AsyncEngine, lead_id: int) -> int:
    async with create_session_factory(engine)() as session:
        count = await session.scalar(
            select(func.count()).select_from(FunnelEvent).where(FunnelEvent.lead_id == lead_id)
        )
        return int(count or 0)


def test_normalise_phone() -> None:
    assert normalise_phone("(305) 555-0188", "US") == PHONE
    assert normalise_phone("+1 305 555 0188", None) == PHONE
    assert normalise_phone("+86 138 0013 8000", "US") == "+8613800138000"
    assert normalise_phone("305 555 0188", None) is None  # no region, no +: unknown country
    assert normalise_phone("12", "US") is None
    assert normalise_phone("not a phone", "US") is None
    assert normalise_phone("  ", "US") is None
    assert normalise_phone(None, "US") is None


async def test_phone_only_record_creates_a_phone_lead(engine: AsyncEngine) -> None:
    [outcome] = await run(engine, rec(1, first_name="Sam"))
    assert outcome.status == "accepted" and outcome.lead_created
    [lead] = await leads(engine)
    assert lead["email"] is None
    assert lead["phone_e164"] == PHONE
    assert lead["phone"] == "+13055550188"
    assert lead["first_name"] == "Sam"
    assert lead["stage"] == 2


async def test_later_email_with_that_phone_joins_the_phone_lead(engine: AsyncEngine) -> None:
    [first] = await run(engine, rec(1, phone="(305) 555-0188"))
    [second] = await run(
        engine,
        rec(2, email="sam@example.com", event_type="event_attended", phone="+1 305 555 0188"),
    )
    assert second.lead_id == first.lead_id
    assert not second.lead_created
    [lead] = await leads(engine)
    assert lead["email"] == "sam@example.com"
    assert lead["phone_e164"] == PHONE
    assert lead["stage"] == 3
    assert await events_of(engine, lead["id"]) == 2
    # And a later phone-only record, or the email alone, still find the same lead.
    [third] = await run(engine, rec(3, phone="305.555.0188"))
    [fourth] = await run(engine, rec(4, email="SAM@example.com".lower(), phone=None))
    assert third.lead_id == fourth.lead_id == first.lead_id
    assert len(await leads(engine)) == 1


async def test_phone_only_record_after_an_email_lead_with_that_phone(engine: AsyncEngine) -> None:
    [first] = await run(engine, rec(1, email="sam@example.com"))
    [second] = await run(engine, rec(2))
    assert second.lead_id == first.lead_id
    assert len(await leads(engine)) == 1


async def test_same_batch_phone_only_and_email_records_make_one_lead(engine: AsyncEngine) -> None:
    outcomes = await run(engine, rec(1), rec(2, email="sam@example.com"), rec(3))
    assert len({o.lead_id for o in outcomes}) == 1
    [lead] = await leads(engine)
    assert lead["email"] == "sam@example.com" and lead["phone_e164"] == PHONE


async def test_email_lead_without_phone_gets_the_phone_then_phone_records_join(
    engine: AsyncEngine,
) -> None:
    [first] = await run(engine, rec(1, email="sam@example.com", phone=None))
    await run(engine, rec(2, email="sam@example.com"))
    [lead] = await leads(engine)
    assert lead["phone_e164"] == PHONE
    [third] = await run(engine, rec(3))
    assert third.lead_id == first.lead_id
    assert len(await leads(engine)) == 1


async def test_existing_email_lead_and_phone_lead_are_not_merged(engine: AsyncEngine) -> None:
    """Documented rule 3: both leads exist already, so they stay apart."""
    [email_lead] = await run(engine, rec(1, email="sam@example.com", phone=None))
    [phone_lead] = await run(engine, rec(2))
    [joint] = await run(engine, rec(3, email="sam@example.com"))
    assert joint.lead_id == email_lead.lead_id
    rows = {r["id"]: r for r in await leads(engine)}
    assert len(rows) == 2
    assert rows[email_lead.lead_id]["phone_e164"] is None
    assert rows[email_lead.lead_id]["phone"] == PHONE  # raw phone kept for a person to review
    assert rows[phone_lead.lead_id]["email"] is None
    assert rows[phone_lead.lead_id]["phone_e164"] == PHONE
    # Phone-only records keep going to the phone lead.
    [later] = await run(engine, rec(4))
    assert later.lead_id == phone_lead.lead_id


async def test_phone_held_by_another_email_stays_with_its_owner(engine: AsyncEngine) -> None:
    [alex] = await run(engine, rec(1, email="alex@example.com"))
    [sam] = await run(engine, rec(2, email="sam@example.com"))
    assert sam.lead_id != alex.lead_id and sam.lead_created
    rows = {r["id"]: r for r in await leads(engine)}
    assert rows[alex.lead_id]["phone_e164"] == PHONE
    assert rows[sam.lead_id]["phone_e164"] is None


async def test_two_new_emails_sharing_a_phone_in_one_batch(engine: AsyncEngine) -> None:
    outcomes = await run(
        engine, rec(1, email="a@example.com"), rec(2, email="b@example.com"), rec(3)
    )
    a, b, phone_only = outcomes
    assert a.lead_id != b.lead_id
    assert phone_only.lead_id == a.lead_id  # the first to claim the number owns it
    rows = {r["email"]: r for r in await leads(engine)}
    assert rows["a@example.com"]["phone_e164"] == PHONE
    assert rows["b@example.com"]["phone_e164"] is None


async def test_reingesting_adds_nothing(engine: AsyncEngine) -> None:
    batch = [rec(1), rec(2, email="sam@example.com"), rec(3, email="other@example.com")]
    await run(engine, *batch)
    again = await run(engine, *batch)
    assert [o.status for o in again] == ["duplicate"] * 3
    assert len(await leads(engine)) == 2


def test_plan_phone_claims_rules() -> None:
    existing = [
        LeadKeys(id=1, email=None, phone_e164="+1"),
        LeadKeys(id=2, email="owner@example.com", phone_e164="+2"),
        LeadKeys(id=3, email="known@example.com", phone_e164=None),
        LeadKeys(id=4, email=None, phone_e164="+4"),
    ]
    rows: list[dict[str, Any]] = [
        {"email": "new@example.com", "phone_e164": "+1"},  # attaches to lead 1
        {"email": "other@example.com", "phone_e164": "+2"},  # owned: cleared
        {"email": "known@example.com", "phone_e164": "+4"},  # both exist: cleared
        {"email": "fresh@example.com", "phone_e164": "+9"},  # free: kept
        {"email": "late@example.com", "phone_e164": "+9"},  # claimed in batch: cleared
        {"email": "owner@example.com", "phone_e164": "+2"},  # its own phone: kept
    ]
    assert plan_phone_claims(rows, existing) == {1: "new@example.com"}
    assert [r["phone_e164"] for r in rows] == ["+1", None, None, "+9", None, "+2"]
