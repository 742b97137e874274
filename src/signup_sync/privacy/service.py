"""Erasure: delete a person's lead, events and conversions, and tombstone their identifiers.

Conversions are deleted with the lead, not anonymised: a conversion row without its lead
would still be personal data through its user id, and counts of erased people are not
kept (documented in docs/privacy.md). The tombstone holds only an HMAC of each identifier
(``keys.HashKey``), so ingestion can refuse the person's records later without the service
keeping who they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.errors import InvalidInput, NotFound
from signup_sync.leads.identity import normalise_phone
from signup_sync.logs import get_logger
from signup_sync.privacy import keys, repository, sweep
from signup_sync.privacy.matching import Needles
from signup_sync.privacy.schemas import ErasureIn, ErasureOut

log = get_logger("signup_sync.privacy")


@dataclass(frozen=True, slots=True)
class Identifiers:
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()  # E.164

    def hashes(self, key: keys.HashKey) -> dict[str, str]:
        out = {key.digest("email", e): "email" for e in self.emails}
        out.update({key.digest("phone", p): "phone" for p in self.phones})
        return out


def requested_identifiers(body: ErasureIn) -> Identifiers:
    if body.email is None and body.phone is None:
        raise InvalidInput("Give the email or the phone of the person to erase", field="email")
    phones: tuple[str, ...] = ()
    if body.phone is not None:
        e164 = normalise_phone(body.phone, body.phone_region)
        if e164 is None:
            raise InvalidInput(
                "not a valid phone number: write it with +country code, or set phone_region",
                field="phone",
            )
        phones = (e164,)
    return Identifiers(emails=(body.email,) if body.email else (), phones=phones)


async def erase(session: AsyncSession, body: ErasureIn) -> ErasureOut:
    """POST /privacy/erase: the person behind an email and/or phone. Does not commit."""
    wanted = requested_identifiers(body)
    return await _erase(session, wanted, lead_ids=())


async def erase_lead(session: AsyncSession, lead_id: int) -> ErasureOut:
    """DELETE /leads/{id}: that lead, with every identifier it holds tombstoned."""
    found = await repository.find_leads(session, emails=(), phones=(), ids=(lead_id,))
    if not found:
        raise NotFound(f"No lead with id {lead_id}", field="lead_id")
    return await _erase(session, Identifiers(), lead_ids=(lead_id,))


def _union(a: Iterable[str | None], b: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({v for v in (*a, *b) if v}))


def _identifiers(wanted: Identifiers, leads: Sequence[repository.LeadIdentity]) -> Identifiers:
    """Every identifier the person's leads hold is theirs: all are erased and blocked."""
    return Identifiers(
        emails=_union(wanted.emails, (lead.email for lead in leads)),
        phones=_union(
            wanted.phones,
            (p for lead in leads for p in (lead.phone_e164, normalise_phone(lead.phone))),
        ),
    )


async def _erase(session: AsyncSession, wanted: Identifiers, lead_ids: Sequence[int]) -> ErasureOut:
    # The full-table search for the identifiers only reads, before the lock: ingestion is
    # not held up by it. Its rows are written after the lock (re-checked there).
    seen = await repository.find_leads(
        session, emails=wanted.emails, phones=wanted.phones, ids=lead_ids
    )
    carriers = await sweep.find_carriers(session, _needles(_identifiers(wanted, seen)))
    await repository.lock_for_erasure(session)  # waits for ingestions in flight
    key = await keys.ensure_key(session)
    leads = await repository.find_leads(
        session, emails=wanted.emails, phones=wanted.phones, ids=lead_ids
    )
    identifiers = _identifiers(wanted, leads)
    needles = _needles(identifiers)
    ids = [x.id for x in leads]
    # Found through the lead (its id, its events' external ids): before the lead goes.
    swept = await sweep.person_tracking_rows(session, needles, ids)
    swept.webhook_deliveries = await sweep.deliveries_of_events(session, ids)
    deleted, events, conversions = await repository.delete_leads(session, ids)
    found = await sweep.apply_to_carriers(session, needles, carriers)
    added = await repository.add_tombstones(session, identifiers.hashes(key))
    out = ErasureOut(
        leads_deleted=deleted,
        events_deleted=events,
        conversions_deleted=conversions,
        tombstones_added=added,
        tracking_messages_deleted=swept.tracking_messages + found.tracking_messages,
        tracking_identities_deleted=swept.tracking_identities + found.tracking_identities,
        webhook_deliveries_deleted=swept.webhook_deliveries + found.webhook_deliveries,
        other_rows_deleted=found.other_rows,
        values_scrubbed=found.values_scrubbed,
        message=_message(deleted, events, conversions),
    )
    log.info("privacy_erasure", **out.model_dump(exclude={"message"}))
    return out


def _needles(identifiers: Identifiers) -> Needles:
    return Needles.of(identifiers.emails, identifiers.phones)


async def settle_files(session: AsyncSession) -> None:
    """After an erasure committed: SQLite checkpoints its WAL (see ``repository.checkpoint``).
    A reader holding an old snapshot can keep it from completing; it is logged, and the
    next erasure (or SQLite's own checkpoint) finishes it."""
    if not await repository.checkpoint(session):
        log.warning("privacy_checkpoint_incomplete", reason="a reader held the WAL")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _message(leads: int, events: int, conversions: int) -> str:
    blocked = (
        "future records of this person from any source are refused (counted as skipped: erased)"
    )
    if leads == 0:
        return f"No data was held for this person; {blocked}"
    return (
        f"Erased {_plural(leads, 'lead')} with {_plural(events, 'event')} and "
        f"{_plural(conversions, 'conversion')}; {blocked}"
    )
