"""The normalised event record: what the API, CSV import and every connector hand to ingestion."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signup_sync.vocabulary import STAGE_OF_EVENT

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Stage by event type name: a dict hit instead of an enum construction per call (hot path).
_STAGE_BY_TYPE = {str(t.value): int(s) for t, s in STAGE_OF_EVENT.items()}


@dataclass(slots=True)
class EventRecord:
    """One validated, normalised funnel event, not yet stored."""

    source_type: str
    event_type: str
    occurred_at: datetime
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    phone_e164: str | None = None
    company: str | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    referrer: str | None = None
    landing_page: str | None = None
    gclid: str | None = None
    fbclid: str | None = None
    msclkid: str | None = None
    metadata: dict[str, Any] | None = None
    source_id: int | None = None
    # "active" events move the lead's stage; "cancelled"/"refunded" ones are kept for the
    # record but do not count toward stages, first touch or event counts.
    status: str = "active"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> int:
        try:
            return _STAGE_BY_TYPE[self.event_type]
        except KeyError:
            raise ValueError(f"{self.event_type!r} is not a valid EventType") from None

    @property
    def counts(self) -> bool:
        """Whether this event moves its lead along the funnel."""
        return self.status == "active"

    @property
    def lead_key(self) -> tuple[str, str]:
        """Email first; phone-only records are keyed by their E.164 number."""
        if self.email:
            return ("email", self.email)
        if self.phone_e164:
            return ("phone", self.phone_e164)
        raise ValueError("an event needs an email or a phone")

    @property
    def external_key(self) -> tuple[str, str, str] | None:
        if self.external_id is None:
            return None
        return (self.source_type, self.external_id, self.event_type)
