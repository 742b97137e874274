"""Joining phone-only leads with the email that later turns up for the same number.

Rules, applied to each incoming email lead row that carries an E.164 phone, oldest first:

1. No lead holds the phone: the email lead takes it (a new lead is created with it; an
   existing email lead without a phone gets it; one with another phone keeps its own).
2. A phone-only lead holds it and no lead has the email yet: that lead is the same person;
   it gets the email (attached in place), so there is still one lead.
3. The phone is held by a lead with another email, or a lead with the email already exists
   besides the phone-only one: two leads stay apart. We never merge two existing leads
   automatically (events, conversions and attribution would have to move); the email row
   keeps its raw ``phone`` but not the ``phone_e164`` key.
4. Within one batch, the first email row to claim a free phone gets it; later ones don't.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.bulk import LeadKeys, attach_emails, find_leads_by_keys


def plan_phone_claims(
    email_rows: Sequence[dict[str, Any]], existing: Sequence[LeadKeys]
) -> dict[int, str]:
    """Apply the rules above: clear ``phone_e164`` on rows that may not take it and return
    ``{phone-only lead id: email}`` to attach."""
    by_phone = {lead.phone_e164: lead for lead in existing if lead.phone_e164}
    known_emails = {lead.email for lead in existing if lead.email}
    attach: dict[int, str] = {}
    claimed: set[str] = set()
    for row in email_rows:
        phone = row.get("phone_e164")
        if not phone:
            continue
        owner = by_phone.get(phone)
        if phone in claimed:
            keeps = False
        elif owner is None or owner.email == row["email"]:
            keeps = True
        elif owner.email is None and row["email"] not in known_emails:
            attach[owner.id] = row["email"]
            keeps = True
        else:
            keeps = False
        if keeps:
            claimed.add(phone)
        else:
            row["phone_e164"] = None
    return attach


async def claim_phones(session: AsyncSession, email_rows: Sequence[dict[str, Any]]) -> None:
    """Resolve phone ownership before email leads are upserted (see the module rules)."""
    phones = sorted({row["phone_e164"] for row in email_rows if row.get("phone_e164")})
    if not phones:
        return
    emails = sorted({row["email"] for row in email_rows})
    existing = await find_leads_by_keys(session, emails, phones)
    await attach_emails(session, plan_phone_claims(email_rows, existing))
