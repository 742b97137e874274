"""Text PostgreSQL (or any UTF-8 driver) cannot store is cleaned by the engine, not fatal."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.db.session import create_session_factory
from signup_sync.sync.clean import clean_json, clean_text
from signup_sync.sync.runner import run_sync
from tests.helpers import LOCAL_SETTINGS
from tests.sync_fakes import FakeConnector, add_source, fake_connector, record

__all__ = ["fake_connector"]


def test_clean_text_strips_nul_and_replaces_lone_surrogates() -> None:
    assert clean_text("plain José 😀") == "plain José 😀"
    assert clean_text("An\x00a") == "Ana"
    assert clean_text("x\ud800y\udc00") == "x\ufffdy\ufffd"
    assert clean_text("pair \ud83d\ude00") == "pair 😀"  # a surrogate pair is one character
    assert clean_json({"k\x00": ["a\x00", 1, None, {"n": "\udfff"}]}) == {
        "k": ["a", 1, None, {"n": "\ufffd"}]
    }


async def test_nul_and_surrogates_from_a_connector_sync_fine(
    engine: AsyncEngine, fake_connector: type[FakeConnector]
) -> None:
    fake_connector.data = {
        "default": [
            record(1, "nul@example.com", name="Ana\x00 María\ud800"),
            record(
                2,
                "meta@example.com",
                meta={"note": "line\x00break", "bad\x00key": ["x\udc00"], "n": 3},
            ),
            record(3, "fine@example.com", name="Zoë"),
        ]
    }
    factory = create_session_factory(engine)
    source_id = await add_source(factory)

    result = await run_sync(factory, source_id, settings=LOCAL_SETTINGS)

    assert result.status == "success", result.error_messages
    assert (result.leads_created, result.leads_skipped, result.errors_count) == (3, 0, 0)
    async with factory() as session:
        rows = await session.execute(select(Lead.email, Lead.first_name))
        names = {email: first for email, first in rows}
        metadata = (
            await session.execute(
                select(FunnelEvent.event_metadata).where(FunnelEvent.external_id == "appointment:2")
            )
        ).scalar_one()
    assert names == {
        "nul@example.com": "Ana María\ufffd",
        "meta@example.com": None,
        "fine@example.com": "Zoë",
    }
    assert metadata["note"] == "linebreak"
    assert metadata["badkey"] == ["x\ufffd"]
    assert metadata["n"] == 3
