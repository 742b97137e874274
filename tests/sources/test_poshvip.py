"""Posh.VIP export connector: reading, §4.4 mapping, paging and cursor, ingestion on both backends.

There is no sync engine on this branch yet, so ``run_sync`` below does what the engine's
contract says it does: map each page's records (skips counted with their reasons), ingest
them and take the page's cursor in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.db.session import create_session_factory, unit_of_work
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.sources import REGISTRY
from signup_sync.sources.base import RetryPolicy, SourceContext
from signup_sync.sources.errors import FatalSourceError, SkipRecord
from signup_sync.sources.poshvip import PoshvipConfig, PoshvipConnector
from tests.fakes.poshvip import FileServerState, file_server
from tests.helpers import local_access

HEADER = (
    "order_number,ticket_id,event_name,event_date,first_name,last_name,email,phone,ticket_type,"
    "quantity,total_paid,currency,order_status,checked_in,tracking_link,host,kickback_referrer,"
    "purchased_at"
)
EV = "Rooftop Fridays,2024-06-21 22:00"
ROWS = [
    # 2: paid, checked in, kickback referral; CJK name, upper-case email -> 3 events
    f"PSH-10482,,{EV},李,小龍,XIAOLONG.LI@example.cn,+86 138 0013 8000,General Admission,2,"
    "46.50,USD,approved,yes,ig-bio,,maria.k@example.com,2024-06-18 19:42",
    # 3: RSVP, phone-only buyer -> 1 event, phone lead
    f"PSH-10483,,{EV},Sam,O'Neil,,+1 305 555 0188,RSVP,1,0,USD,approved,no,dj-alex,DJ Alex,,"
    "2024-06-19 01:05",
    # 4-7: refunded / pending (phone-only) / cancelled / denied -> kept, not counted
    f"PSH-10484,,{EV},Ren,Kato,ren@example.com,,VIP,1,120.00,USD,refunded,no,,,,2024-06-18 20:00",
    f"PSH-10485,,{EV},Pat,Ng,,(212) 555-0147,General Admission,1,23.25,USD,pending,no,,,,"
    "2024-06-19 10:00",
    f"PSH-10486,,{EV},Lou,Reed,lou@example.com,,General Admission,1,23.25,USD,cancelled,no,,,,"
    "2024-06-19 11:00",
    f"PSH-10487,,{EV},Dee,Nye,dee@example.com,,General Admission,1,23.25,USD,denied,no,,,,"
    "2024-06-19 12:00",
    # 8: email + the phone of row 3 -> joins that lead; emoji in the name; checked in
    f'PSH-10488,,{EV},Zoë,"🎉 Party",Sam.ONeil@example.com,305-555-0188,RSVP,1,0,USD,approved,'
    "yes,,,,2024-06-20 09:30",
    # 9: no order number -> hash key, flagged
    f",,{EV},No,Number,nonum@example.com,,General Admission,1,23.25,USD,approved,no,,,,"
    "2024-06-20 10:00",
    # 10: no email, no phone -> skipped
    f"PSH-10489,,{EV},Ghost,,,,General Admission,1,0,USD,approved,no,,,,2024-06-20 11:00",
    # 11: an order_status we don't know -> skipped
    f"PSH-10490,,{EV},Odd,Status,odd@example.com,,GA,1,0,USD,on hold,no,,,,2024-06-20 12:00",
    # 12-13: one order, two tickets; an offset on purchased_at (no tz conversion)
    f"PSH-10491,T1,{EV},Multi,Ticket,multi@example.com,,GA,2,50.00,USD,approved,yes,,,,"
    "2024-06-19T03:00:00Z",
    f"PSH-10491,T2,{EV},Multi,Ticket,multi@example.com,,GA,2,50.00,USD,approved,no,,,,"
    "2024-06-19T03:00:00Z",
    # 14: a re-export of row 2 -> 3 duplicates
    f"PSH-10482,,{EV},李,小龍,xiaolong.li@example.cn,+86 138 0013 8000,General Admission,2,"
    "46.50,USD,approved,yes,ig-bio,,maria.k@example.com,2024-06-18 19:42",
]
EXPORT = ("\ufeff" + "\r\n".join([HEADER, *ROWS]) + "\r\n").encode()
TZ = "America/New_York"


@dataclass
class SyncResult:
    accepted: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)
    pages: int = 0
    cursor: dict[str, Any] | None = None
    lead_ids: dict[str, int] = field(default_factory=dict)


def context(
    *, upload: bytes | None = EXPORT, cursor: dict[str, Any] | None = None, **config: Any
) -> SourceContext:
    config.setdefault("timezone", TZ)
    # A configured file is read only inside the import directory: its own, here.
    where = Path(config["file_path"]).parent if config.get("file_path") else None
    return SourceContext(
        source_id=1,
        access=local_access(import_dir=where),
        source_type="poshvip",
        name="posh",
        config=PoshvipConfig(**config),
        secrets={},
        cursor=cursor,
        run_started_at=datetime.now(UTC),
        retry=RetryPolicy(wait_scale=0),
        upload=upload,
    )


async def run_sync(
    engine: AsyncEngine, ctx: SourceContext, *, stop_after_pages: int | None = None
) -> SyncResult:
    """What the sync engine does: map, ingest and keep the cursor, page by page."""
    result = SyncResult(cursor=dict(ctx.cursor) if ctx.cursor else None)
    connector = PoshvipConnector(ctx)
    factory = create_session_factory(engine)
    try:
        async for page in connector.pages():
            records: list[EventRecord] = []
            for raw in page.records:
                try:
                    records.extend(connector.map_record(raw))
                except SkipRecord as exc:
                    result.skipped.append(exc.reason)
            for record in records:
                record.source_id = None
            async with unit_of_work(factory) as session:
                outcomes = await ingest(session, records)
            for record, outcome in zip(records, outcomes, strict=True):
                if outcome.status == "accepted":
                    result.accepted += 1
                else:
                    result.duplicates += 1
                result.lead_ids[str(record.external_id)] = outcome.lead_id
            result.pages += 1
            if page.cursor is not None:
                result.cursor = page.cursor
            if stop_after_pages is not None and result.pages >= stop_after_pages:
                break
    finally:
        await connector.aclose()
    return result


async def stored_events(engine: AsyncEngine) -> list[FunnelEvent]:
    async with create_session_factory(engine)() as session:
        rows = await session.execute(select(FunnelEvent).order_by(FunnelEvent.id))
        return list(rows.scalars())


async def stored_leads(engine: AsyncEngine) -> list[Lead]:
    async with create_session_factory(engine)() as session:
        return list((await session.execute(select(Lead).order_by(Lead.id))).scalars())


def test_registered_with_a_strict_config() -> None:
    assert REGISTRY["poshvip"] is PoshvipConnector
    with pytest.raises(ValidationError):
        PoshvipConfig(api_key="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="time zone"):
        PoshvipConfig(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="status"):
        PoshvipConfig(status_map={"on hold": "Pending!"})


async def test_export_import_counts_exactly(engine: AsyncEngine) -> None:
    result = await run_sync(engine, context(page_size=4))
    assert result.pages == 4  # 13 rows, 4 per page
    assert result.accepted == 14
    assert result.duplicates == 3
    assert sorted(result.skipped) == [
        "no email or phone",
        "order_status 'on hold' is unknown; map it in status_map",
    ]
    assert result.cursor is not None and result.cursor["row"] == 13

    events = await stored_events(engine)
    assert len(events) == 14
    by_type = Counter((e.event_type, e.status) for e in events)
    assert by_type == {
        ("event_registered", "active"): 6,
        ("event_registered", "refunded"): 1,
        ("event_registered", "pending"): 1,
        ("event_registered", "cancelled"): 1,
        ("event_registered", "denied"): 1,
        ("event_attended", "active"): 3,
        ("referral_received", "active"): 1,
    }
    assert not any(e.event_type == "converted" for e in events)  # Posh payments aren't ours

    leads = await stored_leads(engine)
    assert len(leads) == 8
    by_email = {lead.email: lead for lead in leads}
    assert by_email["xiaolong.li@example.cn"].first_name == "李"
    assert by_email["xiaolong.li@example.cn"].stage == 3
    assert by_email["ren@example.com"].stage == 0  # refunded only
    pending = next(lead for lead in leads if lead.phone_e164 == "+12125550147")
    assert pending.email is None and pending.stage == 0
    # The phone-only RSVP of row 3 and row 8 (email + same phone) are one person.
    sam = by_email["sam.oneil@example.com"]
    assert sam.phone_e164 == "+13055550188"
    assert sam.first_name == "Sam" and sam.stage == 3
    assert result.lead_ids["posh:order:PSH-10483"] == result.lead_ids["posh:order:PSH-10488"]


async def test_mapping_keys_times_and_metadata(engine: AsyncEngine) -> None:
    await run_sync(engine, context())
    events = {(e.external_id, e.event_type): e for e in await stored_events(engine)}
    registered = events[("posh:order:PSH-10482", "event_registered")]
    # 19:42 in New York (EDT, UTC-4) is 23:42 UTC.
    assert registered.occurred_at == datetime(2024, 6, 18, 23, 42, tzinfo=UTC)
    assert registered.utm_campaign == "ig-bio"
    meta = registered.event_metadata or {}
    assert meta["item"] == {
        "kind": "event",
        "id": "Rooftop Fridays@2024-06-21 22:00",
        "name": "Rooftop Fridays",
    }
    assert meta["amount"] == "46.50" and meta["currency"] == "USD" and meta["paid"] is True
    assert meta["purchased_at_raw"] == "2024-06-18 19:42" and meta["timezone"] == TZ
    assert meta["kickback_referrer"] == "maria.k@example.com"
    attended = events[("posh:order:PSH-10482:attended", "event_attended")]
    assert attended.occurred_at == datetime(2024, 6, 22, 2, 0, tzinfo=UTC)  # the event's start
    assert ("posh:order:PSH-10482:referral", "referral_received") in events
    # Per-ticket keys; an offset in the file is used as is.
    t1 = events[("posh:order:PSH-10491:T1", "event_registered")]
    assert t1.occurred_at == datetime(2024, 6, 19, 3, 0, tzinfo=UTC)
    assert "timezone" not in (t1.event_metadata or {})
    assert ("posh:order:PSH-10491:T1:attended", "event_attended") in events
    assert ("posh:order:PSH-10491:T2", "event_registered") in events
    # No order number: a deterministic hash, flagged.
    [hashed] = [e for e in events.values() if (e.external_id or "").startswith("posh:order:hash:")]
    assert (hashed.event_metadata or {})["order_key"] == "hash"
    assert "paid" not in (events[("posh:order:PSH-10483", "event_registered")].event_metadata or {})


async def test_reimport_adds_nothing(engine: AsyncEngine) -> None:
    first = await run_sync(engine, context())
    # Same file, stored cursor: nothing left to read.
    again = await run_sync(engine, context(cursor=first.cursor))
    assert again.pages == 0
    # Forced (or the same rows in a new export): everything is a duplicate.
    forced = context(cursor=first.cursor)
    forced.force = True
    result = await run_sync(engine, forced)
    assert result.accepted == 0 and result.duplicates == 17
    reordered = ("\r\n".join([HEADER, *reversed(ROWS)]) + "\r\n").encode()
    result = await run_sync(engine, context(upload=reordered, cursor=first.cursor))
    assert result.accepted == 0 and result.duplicates == 17
    assert len(await stored_events(engine)) == 14
    assert len(await stored_leads(engine)) == 8


async def test_a_crash_resumes_after_the_last_committed_page(engine: AsyncEngine) -> None:
    partial = await run_sync(engine, context(page_size=5), stop_after_pages=1)
    assert partial.cursor is not None and partial.cursor["row"] == 5
    rest = await run_sync(engine, context(page_size=5, cursor=partial.cursor))
    assert rest.pages == 2
    assert rest.duplicates == 3  # only the re-exported row 14; no overlap re-read
    assert partial.accepted + rest.accepted == 14


async def test_status_changes_in_a_new_export_update_the_stored_events(
    engine: AsyncEngine,
) -> None:
    await run_sync(engine, context())
    changed = EXPORT.replace(b"USD,pending,", b"USD,approved,").replace(
        b"46.50,USD,approved,yes", b"46.50,USD,refunded,yes"
    )
    await run_sync(engine, context(upload=changed))
    events = {(e.external_id, e.event_type): e for e in await stored_events(engine)}
    assert events[("posh:order:PSH-10485", "event_registered")].status == "active"
    assert events[("posh:order:PSH-10482", "event_registered")].status == "refunded"
    assert events[("posh:order:PSH-10482:referral", "referral_received")].status == "refunded"
    assert len(events) == 14


async def test_remapped_columns_and_status_map(engine: AsyncEngine) -> None:
    export = (
        "Ref;Show;Show Date;Buyer;Mail;Mobile Number;State;Bought;Paid\n"
        "A-1;Jazz Night;21/06/2024 21:00;Ana María López;ANA@example.com;;ok;18/06/2024 19:00;10\n"
        "A-2;Jazz Night;21/06/2024 21:00;Bo;;+44 20 7946 0958;;18/06/2024 20:00;0\n"
    ).encode()
    ctx = context(
        upload=export,
        timezone="Europe/Madrid",
        date_format="%d/%m/%Y %H:%M",
        columns={
            "Ref": "order_number",
            "Show": "event_name",
            "Show Date": "event_date",
            "Buyer": "name",
            "Mail": "email",
            "Mobile Number": "phone",
            "State": "order_status",
            "Bought": "purchased_at",
            "Paid": "total_paid",
        },
        status_map={"OK": "active"},
    )
    result = await run_sync(engine, ctx)
    assert (result.accepted, result.skipped) == (2, [])
    leads = {lead.email or lead.phone_e164: lead for lead in await stored_leads(engine)}
    ana = leads["ana@example.com"]
    assert (ana.first_name, ana.last_name) == ("Ana", "María López")
    assert leads["+442079460958"].email is None
    [a1] = [e for e in await stored_events(engine) if e.external_id == "posh:order:A-1"]
    assert a1.occurred_at == datetime(2024, 6, 18, 17, 0, tzinfo=UTC)  # CEST is UTC+2


async def test_bad_files_are_fatal_with_the_reason() -> None:
    async def first_page(ctx: SourceContext) -> None:
        connector = PoshvipConnector(ctx)
        try:
            async for _ in connector.pages():
                break
        finally:
            await connector.aclose()

    with pytest.raises(FatalSourceError, match=r"missing column\(s\) purchased_at, email or phone"):
        await first_page(context(upload=b"order_number,event_name,event_date,name\n1,a,b,c\n"))
    with pytest.raises(FatalSourceError, match="not a UTF-8 text file"):
        await first_page(context(upload=b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfd"))
    with pytest.raises(FatalSourceError, match="empty"):
        await first_page(context(upload=b""))
    with pytest.raises(FatalSourceError, match="upload the file or set file_path or file_url"):
        await first_page(context(upload=None))
    with pytest.raises(FatalSourceError, match="no column 'order ref'"):
        await first_page(context(columns={"Order Ref": "order_number"}))
    with pytest.raises(FatalSourceError, match="cannot read the export file"):
        await first_page(context(upload=None, file_path="/nonexistent/posh.csv"))


async def test_reads_a_configured_file_path(engine: AsyncEngine, tmp_path: Path) -> None:
    path = tmp_path / "posh-export.csv"
    path.write_bytes(EXPORT)
    result = await run_sync(engine, context(upload=None, file_path=str(path), page_size=3))
    assert (result.accepted, result.duplicates, result.pages) == (14, 3, 5)
    assert result.cursor is not None and len(result.cursor["sha256"]) == 64


async def test_reads_a_configured_url_with_retries_and_a_token(engine: AsyncEngine) -> None:
    state = FileServerState(files={"june.csv": EXPORT}, failures_before_success=2, token="t0k3n")
    with file_server(state) as base_url:
        ctx = context(
            upload=None, base_url=base_url, file_url="/exports/june.csv", file_token_env="POSH_T"
        )
        ctx.secrets = {"file_token": "t0k3n"}
        result = await run_sync(engine, ctx)
    assert (result.accepted, result.duplicates) == (14, 3)
    assert state.requests == ["june.csv"] * 3  # two 503s, then the file
    assert state.auth_headers[-1] == "Bearer t0k3n"


async def test_url_failures_are_fatal_and_name_no_secret() -> None:
    async def drain(ctx: SourceContext) -> None:
        connector = PoshvipConnector(ctx)
        try:
            async for _ in connector.pages():
                pass
        finally:
            await connector.aclose()

    state = FileServerState(files={"june.csv": EXPORT}, token="right")
    with file_server(state) as base_url:
        ctx = context(
            upload=None, base_url=base_url, file_url="/exports/june.csv", file_token_env="POSH_T"
        )
        ctx.secrets = {"file_token": "wrong-secret-value"}
        with pytest.raises(FatalSourceError) as caught:
            await drain(ctx)
        assert "401" in str(caught.value) and "wrong-secret-value" not in str(caught.value)
        ctx = context(
            upload=None, base_url=base_url, file_url="/exports/june.csv", file_token_env="POSH_T"
        )
        with pytest.raises(FatalSourceError, match="POSH_T is not set"):
            await drain(ctx)
        state.token, state.html_instead = None, True
        with pytest.raises(
            FatalSourceError, match=r"with a web page \(content type text/html\), not a CSV"
        ):
            await drain(context(upload=None, base_url=base_url, file_url="/exports/june.csv"))


def test_map_record_is_pure_and_skips_with_reasons() -> None:
    connector = PoshvipConnector(context())
    row = {
        "_row": 7,
        "order_number": "P-1",
        "event_name": "Launch 🚀",
        "event_date": "2024-11-03 01:30",  # the repeated hour of a DST change: first one
        "first_name": "Ünal",
        "email": "not-an-email",
        "phone": "+1 305 555 0188",
        "purchased_at": "11/02/2024 11:15 PM",
        "checked_in": "TRUE",
        "host": "DJ Alex",
    }
    [registered, attended] = connector.map_record(row)
    assert registered.email is None and registered.phone_e164 == "+13055550188"
    assert (registered.metadata or {})["invalid_email"] is True
    assert registered.occurred_at == datetime(2024, 11, 3, 3, 15, tzinfo=UTC)
    assert attended.occurred_at == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert registered.first_name == "Ünal"
    # A host counts as a referral only when configured so.
    referral = PoshvipConnector(context(host_is_referral=True)).map_record(row)[-1]
    assert referral.event_type == "referral_received"
    with pytest.raises(SkipRecord, match="no valid email or phone"):
        connector.map_record({**row, "phone": "12"})
    with pytest.raises(SkipRecord, match="purchased_at"):
        connector.map_record({**row, "purchased_at": "yesterday"})


async def test_pages_are_read_lazily_from_a_big_file(tmp_path: Path) -> None:
    """Each page is read when asked for: the cursor after page 1 is row 500, not the total."""
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for n in range(5200):
            out.write(
                f"B-{n},,{EV},N{n},Ö,p{n}@example.com,,GA,1,0,USD,approved,no,,,,2024-06-19 10:00\n"
            )
    connector = PoshvipConnector(context(upload=None, file_path=str(path)))
    sizes, cursors = [], []
    try:
        async for page in connector.pages():
            sizes.append(len(page.records))
            cursors.append((page.cursor or {})["row"])
    finally:
        await connector.aclose()
    assert sizes == [500] * 10 + [200]
    assert cursors[0] == 500 and cursors[-1] == 5200
