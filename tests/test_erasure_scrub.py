"""Erasure beyond the person's own rows: their email or phone inside someone else's rows is
cut out (``privacy.matching``), on both backends; the matcher itself under hypothesis."""

from __future__ import annotations

import httpx
import orjson
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, FunnelSyncLog, Lead
from signup_sync.db.session import create_session_factory
from signup_sync.privacy.matching import ERASED, Needles

ANA = "ana.scrub@example.com"
NATIONAL = "3055550166"
E164 = "+13055550166"


async def test_the_person_inside_another_leads_event_and_a_sync_log_is_scrubbed(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    r = await client.post(
        "/funnel/event",
        json={"email": ANA, "phone": E164, "source_type": "manual", "event_type": "lead_captured"},
    )
    assert r.status_code == 201, r.text
    ben = {
        "email": "ben@example.com",
        "source_type": "referral",
        "event_type": "referral_received",
        "landing_page": f"https://x.example/r?by={ANA.upper()}&utm_source=friends",
        "metadata": {"referred_by": {"name": "Ana", "email": ANA, "phone": "(305) 555-0166"}},
    }
    r = await client.post("/funnel/event", json=ben)
    assert r.status_code == 201, r.text
    factory = create_session_factory(engine)
    async with factory() as session:
        session.add(
            FunnelSyncLog(
                source_type="manual",
                status="partial",
                error_messages=[f"row 3: {ANA} has no date", "row 4: no email"],
                summary=f"1 skipped ({E164})",
                details={"skip_reasons": {f"bad phone 305.555.0166 of {ANA}": 1}},
            )
        )
        await session.commit()

    r = await client.post("/privacy/erase", json={"email": ANA})
    assert r.status_code == 200, r.text
    assert r.json()["tombstones_added"] == 2, r.text  # her phone too
    scrubbed = r.json()["values_scrubbed"]

    async with factory() as session:
        [event] = (await session.execute(select(FunnelEvent))).scalars().all()
        [lead] = (await session.execute(select(Lead))).scalars().all()
        [log] = (await session.execute(select(FunnelSyncLog))).scalars().all()
    assert lead.email == "ben@example.com" and event.lead_id == lead.id
    assert event.landing_page == f"https://x.example/r?by={ERASED}&utm_source=friends"
    assert event.event_metadata == {
        "referred_by": {"name": "Ana", "email": ERASED, "phone": ERASED}
    }
    assert log.error_messages == [f"row 3: {ERASED} has no date", "row 4: no email"]
    assert log.summary == f"1 skipped ({ERASED})"
    assert log.details == {"skip_reasons": {f"bad phone {ERASED} of {ERASED}": 1}}
    assert scrubbed == 5  # landing page, metadata, 3 log fields


separators = st.lists(
    st.sampled_from(["", " ", "-", ".", "(", ")", " ("]), min_size=10, max_size=10
)


@given(separators, st.sampled_from(["", "+1 ", "+1", "1-"]), st.text(max_size=20))
def test_a_phone_is_found_in_any_spelling_and_scrubbed(
    seps: list[str], prefix: str, noise: str
) -> None:
    spelled = prefix + "".join(d + s for d, s in zip(NATIONAL, seps, strict=True)).rstrip(" -.(")
    needles = Needles.of((), (E164,))
    text = f"x{noise}y call {spelled} z"
    assert needles.in_text(text)
    assert not needles.in_text(needles.scrub_text(text))
    assert not needles.in_text(f"id 9{NATIONAL}7")  # inside a longer number: another thing


@given(st.text(max_size=30), st.booleans())
def test_an_email_is_found_in_any_case_in_text_json_and_escaped_bytes(
    noise: str, upper: bool
) -> None:
    needles = Needles.of((ANA,), ())
    email = ANA.upper() if upper else ANA
    assert needles.in_text(noise + email + noise)
    assert not needles.in_text(needles.scrub_text(noise + email + noise))
    escaped = orjson.dumps({"a": noise, "b": email}).replace(b"@", b"\\u0040")
    assert needles.in_bytes(escaped)
    assert needles.in_value({"k": [1, {"deep": email}]})
    assert needles.scrub_value({email: email}) == {ERASED: ERASED}
    assert not needles.in_text(noise.replace("@", "") + "ana.scrub@example.co")
