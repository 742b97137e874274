"""EasyAppointments source config: what ``funnel_sources.config`` may hold, and its helpers.

``site_timezone`` has no default: EA writes booking/create/update times in its own zone
(1.6: the ``default_timezone`` setting; 1.5: PHP's ``date.timezone``), which its API does
not expose, so the operator names it (docs/connectors.md).
"""

from __future__ import annotations

import re
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from signup_sync.sources.base import SourceConfig, SourceContext
from signup_sync.sources.secrets import require
from signup_sync.vocabulary import SourceType

SOURCE = SourceType.EASYAPPOINTMENTS.value
CustomerField = Literal[
    "notes",
    "custom_field_1",
    "custom_field_2",
    "custom_field_3",
    "custom_field_4",
    "custom_field_5",
]
CUSTOMER_FIELDS: tuple[str, ...] = get_args(CustomerField)


class EasyAppointmentsConfig(SourceConfig):
    """Non-secret settings. Statuses are compared case-insensitively (EA's are free text)."""

    mode: Literal["api", "mysql"] = "api"
    base_url: str = "http://localhost/index.php/api/v1/"
    auth: Literal["bearer", "basic"] = "bearer"
    # Defaults: SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_API_TOKEN (bearer), ..._USERNAME and
    # ..._PASSWORD (basic), set in _auth_defaults.
    api_token_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    page_length: int = Field(500, ge=1, le=1000)  # EA enforces no maximum; PHP memory does
    min_interval_seconds: float = Field(1.25, ge=0)  # EA allows 100 requests / 120 s per IP
    rate_limit_window_seconds: float = Field(120.0, ge=0)  # wait after EA's bare 429
    rescan_days: int | None = Field(14, ge=0, le=3650)  # None: no window re-read
    use_with: bool = True
    customer_cache_size: int = Field(5000, ge=1)
    # The zone EA writes book/create/update times in: 1.6 its default_timezone setting,
    # 1.5 PHP's date.timezone. Required: no guess (see docs/connectors.md).
    site_timezone: str
    use_provider_timezone: bool = True  # start/end are the provider's local wall time
    infer_completed: bool = False  # EA has no attendance flag: past + not cancelled = completed
    cancelled_statuses: list[str] = ["Cancelled"]
    draft_statuses: list[str] = ["Draft"]
    completed_statuses: list[str] = []
    utm_fields: list[CustomerField] = []  # customer fields holding utm_source=...&...
    default_phone_region: str | None = None
    # EA >= 1.5.1 sends its webhook secret verbatim in this header; None: webhooks refused.
    webhook_secret_env: str | None = None
    webhook_header: str = Field("X-Ea-Token", pattern=r"^[A-Za-z0-9-]{1,64}$")
    # Direct-MySQL mode (EA >= 1.5: needs update_datetime).
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "easyappointments"
    mysql_database: str = "easyappointments"
    mysql_password_env: str | None = None
    table_prefix: str = "ea_"
    mysql_batch: int = Field(1000, ge=1, le=10000)
    mysql_overlap_seconds: int = Field(120, ge=0)
    # Deletions at the source (easyappointments_deletions): how often ids are compared
    # (None: never) and the id-only scan's page length (API mode).
    deletion_check_hours: float | None = Field(24.0, ge=0)
    id_scan_length: int = Field(5000, ge=1, le=100_000)

    @field_validator("site_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("table_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]{0,32}", value):
            raise ValueError("table_prefix may hold only letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _auth_defaults(self) -> EasyAppointmentsConfig:
        if self.mode == "api" and self.auth == "bearer" and self.api_token_env is None:
            self.api_token_env = "SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_API_TOKEN"  # noqa: S105 - a variable name
        if self.mode == "api" and self.auth == "basic":
            self.username_env = self.username_env or "SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_USERNAME"
            self.password_env = self.password_env or "SIGNUP_SYNC_SOURCE_EASYAPPOINTMENTS_PASSWORD"
        return self

    def outbound_hosts(self) -> dict[str, tuple[str, int]]:
        return {"mysql_host": (self.mysql_host, self.mysql_port)} if self.mode == "mysql" else {}


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise ValueError(f"unknown time zone {name[:64]!r}") from None


def secret(ctx: SourceContext, key: str, env: str | None) -> str:
    """A resolved secret, or a fatal error naming its variable (never the value)."""
    return require(ctx.secrets, key, "EasyAppointments", env)
