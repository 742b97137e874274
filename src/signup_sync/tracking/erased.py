"""Messages of a person erased on request (``POST /privacy/erase``): stored nowhere.

A message is the erased person's when its email (traits, a track's properties), its phone,
or an id that is an email address (``userId``, ``anonymousId``, alias ``previousId``) was
erased. Such a message is answered 200 like any other (Segment and RudderStack clients
retry anything else) and counted as ``dropped``: no message row, no identity, no event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.leads.identity import normalise_phone, validate_normalised_email
from signup_sync.privacy.keys import guard_ingestion
from signup_sync.privacy.tombstones import erased_identifiers
from signup_sync.tracking.messages import Parsed, text, traits_of


def _email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return None
    try:
        return validate_normalised_email(value)
    except ValueError:
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def identifiers_of(message: Parsed) -> tuple[set[str], set[str]]:
    """(emails, E.164 phones) a message names."""
    emails = {message.email} if message.email else set()
    emails |= {
        e for v in (message.anonymous_id, message.user_id, message.previous_id) if (e := _email(v))
    }
    payload = message.payload
    props = _obj(payload.get("properties")) if payload.get("type") == "track" else {}
    phones = {
        p
        for source in (traits_of(payload), props)
        if (p := normalise_phone(text(source.get("phone"), 64)))
    }
    return emails, phones


async def split_erased(
    session: AsyncSession, messages: Sequence[Parsed]
) -> tuple[list[Parsed], int]:
    """(the messages to keep, how many were dropped). The erasure guard and one tombstone
    lookup run only when a message names an email or a phone: anonymous traffic pays
    nothing."""
    named = [identifiers_of(m) for m in messages]
    emails = {e for found, _ in named for e in found}
    phones = {p for _, found in named for p in found}
    if not (emails or phones):
        return list(messages), 0
    key = await guard_ingestion(session)  # an erasure in flight finishes first
    erased = await erased_identifiers(session, key, emails, phones)
    if not erased:
        return list(messages), 0
    kept = [
        m
        for m, (found_emails, found_phones) in zip(messages, named, strict=True)
        if not (found_emails | found_phones) & erased
    ]
    return kept, len(messages) - len(kept)
