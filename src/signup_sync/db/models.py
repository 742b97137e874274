"""SQLAlchemy models of the funnel tables (the schema itself lives in the Alembic migrations)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from signup_sync.db.types import BigId, JSONDoc, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FunnelSource(Base):
    """A configured source: its type, non-secret config, schedule, cursor and sync lease."""

    __tablename__ = "funnel_sources"
    __table_args__ = (UniqueConstraint("source_type", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    schedule: Mapped[str | None] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    # Secret values given in the API, {name: Fernet token} (SIGNUP_SYNC_SECRETS_KEY); never
    # returned. Names without a stored value come from the config's *_env variables.
    secret_values: Mapped[dict[str, str] | None] = mapped_column(JSONDoc)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_status: Mapped[str | None] = mapped_column(String(16))
    total_leads_captured: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_sync_log_id: Mapped[int | None] = mapped_column(BigId)
    # The schedule slot (cron fire time) last claimed by a scheduler: each slot runs once.
    last_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a run last ended `success` (the staleness metric reads it at scrape time).
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Lead(Base):
    """One person, keyed by normalised email (or, for phone-only buyers, by E.164 phone)."""

    __tablename__ = "funnel_leads"
    __table_args__ = (
        Index(None, "first_seen_at"),
        Index(None, "first_touch_source_type", "first_seen_at"),
        Index(None, "first_touch_utm_campaign", "first_seen_at"),
        Index(None, "first_touch_channel", "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(20), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    stage: Mapped[int] = mapped_column(SmallInteger)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_touch_source_type: Mapped[str | None] = mapped_column(String(32))
    first_touch_utm_source: Mapped[str | None] = mapped_column(String(255))
    first_touch_utm_medium: Mapped[str | None] = mapped_column(String(255))
    first_touch_utm_campaign: Mapped[str | None] = mapped_column(String(255))
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_touch_channel: Mapped[str | None] = mapped_column(String(32))
    # "kind:id" and name of the first touch's metadata.item (a webinar, event, service...).
    first_touch_item: Mapped[str | None] = mapped_column(String(300))
    first_touch_item_name: Mapped[str | None] = mapped_column(String(255))
    # When the lead first reached stage N or a later one (min occurred_at of its active
    # events at stage >= N); NULL while it has not. Non-decreasing in N.
    stage_1_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_2_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_3_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_4_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_5_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_6_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FunnelEvent(Base):
    """A touchpoint: one thing one lead did, from one source, at one time."""

    __tablename__ = "funnel_events"
    __table_args__ = (
        UniqueConstraint("source_type", "external_id", "event_type"),
        Index(None, "lead_id", "occurred_at"),
        Index(None, "occurred_at", "event_type"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("funnel_leads.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("funnel_sources.id", ondelete="SET NULL")
    )
    source_type: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(32))
    stage: Mapped[int] = mapped_column(SmallInteger)
    # active | cancelled | refunded ...: only active events move a lead along the funnel.
    status: Mapped[str] = mapped_column(String(16), default="active")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    referrer: Mapped[str | None] = mapped_column(Text)
    landing_page: Mapped[str | None] = mapped_column(Text)
    gclid: Mapped[str | None] = mapped_column(String(255))
    fbclid: Mapped[str | None] = mapped_column(String(255))
    msclkid: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(32))  # signup_sync.channels, at ingest
    event_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FunnelConversion(Base):
    """A lead's conversion with its attribution frozen at conversion time."""

    __tablename__ = "funnel_conversions"
    __table_args__ = (
        UniqueConstraint("lead_id", "conversion_type"),
        Index(None, "converted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("funnel_leads.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(255))
    conversion_type: Mapped[str] = mapped_column(String(64))
    value: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    converted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lookback_days: Mapped[int] = mapped_column(Integer)
    converted_event_id: Mapped[int | None] = mapped_column(BigId)
    first_touch_event_id: Mapped[int | None] = mapped_column(BigId)
    first_touch_source_type: Mapped[str | None] = mapped_column(String(32))
    first_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_touch_event_id: Mapped[int | None] = mapped_column(BigId)
    last_touch_source_type: Mapped[str | None] = mapped_column(String(32))
    last_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    days_to_conversion: Mapped[int | None] = mapped_column(Integer)
    total_touchpoints: Mapped[int] = mapped_column(Integer, default=0)
    attribution: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttributionCredit(Base):
    """One touchpoint's share of one conversion under one attribution model.

    The queryable copy of the credits frozen in ``funnel_conversions.attribution``. Credits
    are integer millionths (a conversion's sum to 1,000,000) and values integer cents (a
    conversion's sum to its value), so sums are exact on every database.
    """

    __tablename__ = "funnel_attribution_credits"
    __table_args__ = (
        Index(None, "conversion_id"),
        Index(None, "lead_id", "model"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversion_id: Mapped[int] = mapped_column(
        ForeignKey("funnel_conversions.id", ondelete="CASCADE")
    )
    lead_id: Mapped[int] = mapped_column(ForeignKey("funnel_leads.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    item: Mapped[str | None] = mapped_column(String(300))
    item_name: Mapped[str | None] = mapped_column(String(255))
    credit_micros: Mapped[int] = mapped_column(Integer)
    value_cents: Mapped[int | None] = mapped_column(BigInteger)


class FunnelSyncLog(Base):
    """One run of one source's sync, from `running` to success / partial / failed."""

    __tablename__ = "funnel_sync_logs"
    __table_args__ = (
        Index(None, "source_type", "started_at"),
        Index(None, "source_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("funnel_sources.id", ondelete="SET NULL")
    )
    source_type: Mapped[str] = mapped_column(String(32))
    source_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16), default="api")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    leads_processed: Mapped[int] = mapped_column(Integer, default=0)
    leads_created: Mapped[int] = mapped_column(Integer, default=0)
    leads_updated: Mapped[int] = mapped_column(Integer, default=0)
    leads_skipped: Mapped[int] = mapped_column(Integer, default=0)
    errors_count: Mapped[int] = mapped_column(Integer, default=0)
    error_messages: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    summary: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)


class WebhookDelivery(Base):
    """One verified webhook delivery, stored raw before processing (``signup_sync.webhooks``).

    ``status``: pending -> processing (claimed until ``claimed_until``) -> done, or failed
    (retried at ``next_attempt_at``) and finally parked (gave up; replayable).
    """

    __tablename__ = "funnel_webhook_inbox"
    __table_args__ = (
        UniqueConstraint("source_type", "source_id", "dedupe_key"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("funnel_sources.id", ondelete="SET NULL")
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)


class PrivacyHashKey(Base):
    """The one key (row id 1) that hashes erased identifiers; see ``signup_sync.privacy``."""

    __tablename__ = "privacy_hash_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The generated key (hex) when PRIVACY_HASH_KEY is unset; NULL when it comes from there.
    secret: Mapped[str | None] = mapped_column(String(128))
    # HMAC of a constant under the key: tells a changed PRIVACY_HASH_KEY from the right one.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivacyTombstone(Base):
    """An erased person's identifier as a keyed hash: ingestion refuses records that match."""

    __tablename__ = "privacy_tombstones"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # email | phone
    identifier_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackingMessage(Base):
    """One message received by the Segment-compatible tracking API (/v1/*), kept as sent.

    ``status``: touchpoint (stored as a funnel event), pending (a touch waiting for its
    anonymous id to be identified), unmapped (a track name with no event type), recorded
    (identify, alias, group, a page view that is no touch).
    """

    __tablename__ = "funnel_tracking_messages"
    __table_args__ = (
        UniqueConstraint("write_key_id", "message_id"),
        Index(None, "status", "event_name"),
        Index(None, "anonymous_id", "status"),
        Index(None, "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    write_key_id: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    event_name: Mapped[str | None] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(32))
    source_type: Mapped[str] = mapped_column(String(32))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("funnel_leads.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackingIdentity(Base):
    """The identity map of the tracking API: an anonymous or user id, its email and link."""

    __tablename__ = "funnel_tracking_identities"
    __table_args__ = (UniqueConstraint("kind", "value"), Index(None, "linked_user_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # anon | user
    value: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    linked_user_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Analytics rollups (read by analytics.rollup on PostgreSQL; kept by triggers there) -------
# Days are UTC dates. A write to leads, events or conversions marks the days it touches in
# funnel_rollup_dirty (statement-level triggers); analytics.rollup.refresh recomputes those
# days from the base tables. See docs/analytics.md "Rollups".

_dims = ("source_type", "channel", "utm_source", "utm_medium", "utm_campaign")

rollup_dirty = Table(
    "funnel_rollup_dirty",
    Base.metadata,
    Column("day", Date, primary_key=True),
)

rollup_leads = Table(
    "funnel_rollup_leads",
    Base.metadata,
    Column("day", Date, nullable=False, index=True),
    *(Column(name, String(255)) for name in _dims),
    Column("item", String(300)),
    Column("item_name", String(255)),
    Column("stage", SmallInteger, nullable=False),
    Column("leads", BigInteger, nullable=False),
)

rollup_events = Table(
    "funnel_rollup_events",
    Base.metadata,
    Column("day", Date, nullable=False, index=True),
    Column("event_type", String(32), nullable=False),
    Column("source_type", String(32)),
    Column("utm_campaign", String(255)),
    Column("events", BigInteger, nullable=False),
)

rollup_credits = Table(
    "funnel_rollup_credits",
    Base.metadata,
    Column("day", Date, nullable=False, index=True),
    Column("lead_source_type", String(32)),
    Column("lead_utm_campaign", String(255)),
    Column("conversion_type", String(64), nullable=False),
    Column("model", String(20), nullable=False),
    *(Column(name, String(255)) for name in _dims),
    Column("item", String(300)),
    Column("item_name", String(255)),
    Column("micros", BigInteger, nullable=False),
    Column("cents", BigInteger),
    Index(None, "model", "day"),  # every read names one attribution model
)

rollup_conversions = Table(
    "funnel_rollup_conversions",
    Base.metadata,
    Column("day", Date, nullable=False, index=True),
    Column("lead_source_type", String(32)),
    Column("lead_utm_campaign", String(255)),
    Column("conversion_type", String(64), nullable=False),
    Column("credited", Boolean, nullable=False),
    Column("days_to_conversion", Integer),
    Column("conversions", BigInteger, nullable=False),
    Column("value", Numeric(20, 2)),
)

# Fixed-window request counters shared by every worker and replica (the tracking API's
# browser rate limit, tracking.throttle). ``bucket`` names what is counted (a write key id,
# or a hash of a client address); rows older than an hour are pruned.
rate_counters = Table(
    "funnel_rate_counters",
    Base.metadata,
    Column("bucket", String(64), primary_key=True),
    Column("window_start", BigInteger, nullable=False),
    Column("hits", Integer, nullable=False),
)
