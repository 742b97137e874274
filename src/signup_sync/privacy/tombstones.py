"""The check ingestion makes: which records belong to an erased person."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.events.records import EventRecord
from signup_sync.privacy import repository
from signup_sync.privacy.keys import HashKey


def record_hashes(key: HashKey, record: EventRecord) -> list[str]:
    """The identifier hashes of one record: its email and its E.164 phone."""
    found = []
    if record.email:
        found.append(key.digest("email", record.email))
    if record.phone_e164:
        found.append(key.digest("phone", record.phone_e164))
    return found


async def erased_indices(
    session: AsyncSession, key: HashKey | None, records: Sequence[EventRecord]
) -> set[int]:
    """Indices of records whose email or phone was erased: one indexed lookup.

    ``key`` is ``keys.guard_ingestion(session)``, read once per ingestion; None means nobody
    was ever erased, so there is nothing to look up. Either identifier matching is enough:
    a new email arriving with an erased person's phone is that person.
    """
    if key is None or not records:
        return set()
    per_record = [record_hashes(key, r) for r in records]
    hit = await repository.tombstoned(session, {h for hs in per_record for h in hs})
    if not hit:
        return set()
    return {i for i, hs in enumerate(per_record) if any(h in hit for h in hs)}


async def erased_identifiers(
    session: AsyncSession,
    key: HashKey | None,
    emails: Collection[str],
    phones: Collection[str],
) -> set[str]:
    """Which of these normalised emails and E.164 phones were erased: one indexed lookup
    (none when nobody was ever erased)."""
    if key is None or not (emails or phones):
        return set()
    hashed = {key.digest("email", e): e for e in emails}
    hashed.update({key.digest("phone", p): p for p in phones})
    hit = await repository.tombstoned(session, hashed)
    return {hashed[h] for h in hit}
