"""A seeded synthetic funnel: people across all seven sources, streamed one lead at a time.

``generate`` is pure: the same (leads, seed, end, days, extra_touches) always yields the
same records, and each lead depends only on (seed, its index), so a benchmark can stream
a million leads in constant memory or split the range between workers. ``store`` writes a
batch through the real ingestion path (events first, then conversions, so attribution
sees the touchpoints). Demo emails all end in ``.demo.example``, which is how ``--reset``
finds them again.
"""

from __future__ import annotations

import itertools
import random
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.conversions.schemas import ConversionIn
from signup_sync.conversions.service import record_conversion
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.leads.repository import delete_by_email_suffix
from signup_sync.vocabulary import EventType, SourceType

DEMO_EMAIL_SUFFIX = ".demo.example"
DOMAINS = ("mail", "inbox", "acme", "globex", "initech", "umbrella", "hooli")

FIRST_NAMES = (
    "Ana", "Ben", "Chloé", "David", "Emma", "François", "Grace", "Hiro", "Inès", "José",
    "Kai", "Léa", "Łukasz", "Mia", "Noah", "Olivia", "Priya", "Søren", "Zoë", "Björn",
)  # fmt: skip
LAST_NAMES = (
    "García", "Müller", "Nguyễn", "O'Brien", "Kowalski", "Smith", "Rossi", "Tanaka",
    "Dubois", "Johansson", "Okafor", "Silva", "Novák", "Patel", "Cohen", "Åberg",
)  # fmt: skip
COMPANIES = (None, None, "Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Ltd")

# How the seven sources share new people (weights).
SOURCE_WEIGHTS: dict[SourceType, int] = {
    SourceType.DIRECT_SIGNUP: 20,
    SourceType.ZOOM: 18,
    SourceType.EVENTBRITE: 15,
    SourceType.REFERRAL: 13,
    SourceType.EASYAPPOINTMENTS: 12,
    SourceType.MANUAL: 12,
    SourceType.POSHVIP: 10,
}

# (utm_source, utm_medium, utm_campaign) of a first touch; None means no UTM at all.
CAMPAIGNS: tuple[tuple[str, str, str] | None, ...] = (
    ("google", "cpc", "brand_search"),
    ("google", "cpc", "competitor_search"),
    ("facebook", "paid_social", "spring_promo"),
    ("facebook", "paid_social", "lookalike_q3"),
    ("linkedin", "paid_social", "abm_enterprise"),
    ("newsletter", "email", "monthly_newsletter"),
    ("partner", "referral", "partner_program"),
    None,
)
CAMPAIGN_WEIGHTS = (14, 6, 10, 8, 7, 12, 5, 38)

# Each pulled source: (register event, attend event, chance to attend, days until it happens).
REGISTRATIONS: dict[SourceType, tuple[EventType, EventType, float, tuple[float, float]]] = {
    SourceType.ZOOM: (EventType.WEBINAR_REGISTERED, EventType.WEBINAR_ATTENDED, 0.45, (1, 10)),
    SourceType.EVENTBRITE: (EventType.EVENT_REGISTERED, EventType.EVENT_ATTENDED, 0.6, (3, 25)),
    SourceType.EASYAPPOINTMENTS: (
        EventType.APPOINTMENT_BOOKED,
        EventType.APPOINTMENT_COMPLETED,
        0.75,
        (1, 12),
    ),
    SourceType.POSHVIP: (EventType.EVENT_REGISTERED, EventType.EVENT_ATTENDED, 0.55, (2, 20)),
}
CANCEL_RATE = 0.06
PLANS = ((Decimal("29.00"), 5), (Decimal("99.00"), 3), (Decimal("299.00"), 1))


@dataclass(frozen=True, slots=True)
class DemoConversion:
    email: str
    user_id: str
    converted_at: datetime
    value: Decimal
    conversion_type: str = "subscription"
    currency: str = "USD"


@dataclass(slots=True)
class DemoLead:
    index: int
    email: str
    source_type: str
    events: list[EventRecord] = field(default_factory=list)
    conversion: DemoConversion | None = None


def _ascii(text: str) -> str:
    text = text.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("Ø", "O")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _day_weights(days: int) -> list[float]:
    """Cumulative weights of each day: a growing funnel, quieter at weekends."""
    weights = []
    for day in range(days):
        growth = 1 + 0.8 * day / max(days - 1, 1)
        weekend = 0.55 if day % 7 in (5, 6) else 1.0
        weights.append(growth * weekend)
    return list(itertools.accumulate(weights))


class _Lead:
    """Builds one person's events in time order, dropping anything after ``end``."""

    def __init__(self, rng: random.Random, seed: int, index: int, end: datetime) -> None:
        self.rng, self.seed, self.index, self.end = rng, seed, index, end
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = f"{rng.choice(DOMAINS)}{DEMO_EMAIL_SUFFIX}"
        self.email = f"{_ascii(first)}.{_ascii(last)}.{index}@{domain}"
        self.first_name, self.last_name, self.company = first, last, rng.choice(COMPANIES)
        self.events: list[EventRecord] = []

    def add(
        self, source: SourceType, event: EventType, at: datetime, status: str = "active", **utm: str
    ) -> bool:
        if at > self.end:
            return False
        self.events.append(
            EventRecord(
                source_type=source.value,
                event_type=event.value,
                occurred_at=at,
                email=self.email,
                external_id=f"demo-{self.seed}-{self.index}-{len(self.events)}",
                status=status,
                first_name=self.first_name,
                last_name=self.last_name,
                company=self.company,
                utm_source=utm.get("utm_source"),
                utm_medium=utm.get("utm_medium"),
                utm_campaign=utm.get("utm_campaign"),
            )
        )
        return True

    def later(self, at: datetime, low: float, high: float) -> datetime:
        return at + timedelta(days=self.rng.uniform(low, high))

    def engage(self, source: SourceType, at: datetime, **utm: str) -> datetime | None:
        """Register with a pulled source; the attendance time, or None if they never came."""
        register, attend, p_attend, (low, high) = REGISTRATIONS[source]
        if self.rng.random() < CANCEL_RATE:
            self.add(source, register, at, status="cancelled", **utm)
            return None
        if not self.add(source, register, at, **utm):
            return None
        if self.rng.random() >= p_attend:
            return None
        when = self.later(at, low, high)
        return when if self.add(source, attend, when) else None


def _utm(rng: random.Random) -> dict[str, str]:
    picked = rng.choices(CAMPAIGNS, weights=CAMPAIGN_WEIGHTS)[0]
    if picked is None:
        return {}
    return dict(zip(("utm_source", "utm_medium", "utm_campaign"), picked, strict=True))


def _one_lead(
    seed: int, index: int, end: datetime, days: int, cum_days: list[float], extra: float
) -> DemoLead:
    # Each lead has its own generator: reproducible alone, whatever was generated before it.
    rng = random.Random(f"signup-sync-demo:{seed}:{index}")  # noqa: S311 - synthetic data
    lead = _Lead(rng, seed, index, end)
    source = rng.choices(list(SOURCE_WEIGHTS), weights=list(SOURCE_WEIGHTS.values()))[0]
    start = end - timedelta(days=days)
    day = bisect_right(cum_days, rng.random() * cum_days[-1])
    first_at = start + timedelta(days=min(day, days - 1), hours=rng.uniform(8, 20))
    first_at = min(first_at, end).replace(microsecond=0)
    utm = _utm(rng)

    attended: datetime | None = None
    started_at: datetime | None = None
    if source in REGISTRATIONS:
        attended = lead.engage(source, first_at, **utm)
    elif source is SourceType.DIRECT_SIGNUP and rng.random() < 0.45:
        lead.add(source, EventType.SIGNUP_STARTED, first_at, **utm)
        started_at = first_at
    else:
        kind = (
            EventType.REFERRAL_RECEIVED
            if source is SourceType.REFERRAL
            else (EventType.LEAD_CAPTURED)
        )
        lead.add(source, kind, first_at, **utm)
        if rng.random() < (0.5 if source is SourceType.REFERRAL else 0.35):
            via = rng.choice((SourceType.EASYAPPOINTMENTS, SourceType.ZOOM))
            attended = lead.engage(via, lead.later(first_at, 0.5, 14))
    # Extra touches: more webinars, events and calls (a benchmark turns this up).
    last = attended or first_at
    for _ in range(_count(rng, extra)):
        via = rng.choice(tuple(REGISTRATIONS))
        again = lead.engage(via, lead.later(last, 0.5, 20))
        attended = attended or again
        last = again or last
    # Attending something makes a signup six times as likely as not attending.
    if started_at is None and rng.random() < (0.24 if attended else 0.04):
        started_at = lead.later(attended or first_at, 0.1, 10)
        if not lead.add(SourceType.DIRECT_SIGNUP, EventType.SIGNUP_STARTED, started_at):
            started_at = None
    demo = DemoLead(index=index, email=lead.email, source_type=source.value, events=lead.events)
    if started_at is None or rng.random() >= 0.6:
        return demo
    completed_at = lead.later(started_at, 0, 2)
    if not lead.add(SourceType.DIRECT_SIGNUP, EventType.SIGNUP_COMPLETED, completed_at):
        return demo
    converted_at = lead.later(completed_at, 1, 30).replace(microsecond=0)
    if rng.random() < 0.45 and converted_at <= end:
        value = rng.choices([p for p, _ in PLANS], weights=[w for _, w in PLANS])[0]
        demo.conversion = DemoConversion(
            email=lead.email,
            user_id=f"demo_user_{seed}_{index}",
            converted_at=converted_at,
            value=value,
        )
    return demo


def _count(rng: random.Random, mean: float) -> int:
    """A Poisson-like count with this mean (whole part always, fraction by chance)."""
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0)


def default_end() -> datetime:
    """Today at midnight UTC: reruns on the same day give the same data."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def generate(
    leads: int,
    seed: int = 42,
    *,
    end: datetime | None = None,
    days: int = 182,
    extra_touches: float = 0.6,
    first_index: int = 0,
) -> Iterator[DemoLead]:
    """Leads number ``first_index`` onwards, first seen over the ``days`` before ``end``."""
    if leads < 0 or days < 1 or extra_touches < 0:
        raise ValueError("leads and extra_touches must be >= 0 and days >= 1")
    end = end or default_end()
    cum_days = _day_weights(days)
    for index in range(first_index, first_index + leads):
        yield _one_lead(seed, index, end, days, cum_days, extra_touches)


def batches(leads: Iterator[DemoLead], events_per_batch: int = 2000) -> Iterator[list[DemoLead]]:
    """Group leads so that each batch holds about ``events_per_batch`` events."""
    batch: list[DemoLead] = []
    size = 0
    for lead in leads:
        batch.append(lead)
        size += len(lead.events)
        if size >= events_per_batch:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass(slots=True)
class StoreResult:
    events_accepted: int = 0
    events_duplicate: int = 0
    conversions_recorded: int = 0
    conversions_duplicate: int = 0

    def add(self, other: StoreResult) -> None:
        self.events_accepted += other.events_accepted
        self.events_duplicate += other.events_duplicate
        self.conversions_recorded += other.conversions_recorded
        self.conversions_duplicate += other.conversions_duplicate


async def store(session: AsyncSession, batch: Sequence[DemoLead]) -> StoreResult:
    """Write a batch through ingestion and record_conversion. Does not commit."""
    result = StoreResult()
    outcomes = await ingest(session, [event for lead in batch for event in lead.events])
    for outcome in outcomes:
        if outcome.status == "accepted":
            result.events_accepted += 1
        else:
            result.events_duplicate += 1
    for lead in batch:
        c = lead.conversion
        if c is None:
            continue
        out = await record_conversion(
            session,
            ConversionIn(
                email=c.email,
                user_id=c.user_id,
                conversion_type=c.conversion_type,
                value=c.value,
                currency=c.currency,
                converted_at=c.converted_at,
            ),
        )
        if out.duplicate:
            result.conversions_duplicate += 1
        else:
            result.conversions_recorded += 1
    return result


async def reset(session: AsyncSession) -> int:
    """Delete earlier demo leads (and, by cascade, their events and conversions)."""
    return await delete_by_email_suffix(session, DEMO_EMAIL_SUFFIX)
