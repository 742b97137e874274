"""Service settings, read from the environment once, by whoever builds the app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_FILE = "signup_sync.db"
# Names the dotenv file read at start (default `.env` in the working directory; empty: none).
ENV_FILE_VARIABLE = "SIGNUP_SYNC_ENV_FILE"
DEFAULT_ENV_FILE = ".env"


class SettingsError(Exception):
    """A bad environment value; the message names the variable and the problem in one line."""


def _split_csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return [str(part).strip() for part in value if str(part).strip()]
    raise ValueError("expected a comma-separated list")


def normalise_database_url(raw: str | None) -> str:
    """Turn what a platform hands out into an async SQLAlchemy URL.

    ``postgres://`` and ``postgresql://`` (Railway, Heroku) become ``postgresql+asyncpg://``;
    libpq's ``sslmode`` becomes asyncpg's ``ssl``; unset means a SQLite file in the working
    directory.
    """
    if raw is None or not raw.strip():
        return f"sqlite+aiosqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"
    url = raw.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"):
        # urlunsplit would drop the empty host of sqlite:////abs/path, so edit the text.
        return "sqlite+aiosqlite:" + url.split(":", 1)[1]
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        scheme = "postgresql+asyncpg"
    if scheme != "postgresql+asyncpg":
        raise ValueError(
            f"unsupported scheme {parts.scheme!r}; use postgresql://user:pw@host:port/db "
            "or sqlite:///path"
        )
    if not parts.hostname and not parts.path.strip("/"):
        raise ValueError("a PostgreSQL URL needs a host or a database name")
    query = [
        ("ssl" if key == "sslmode" else key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    parts = parts._replace(query=urlencode(query))
    return urlunsplit(parts._replace(scheme=scheme))


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    # Precedence (pydantic-settings): explicit arguments, then the process environment,
    # then the dotenv file, then the defaults below.
    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
    )

    database_url: str = Field(
        default="",
        validation_alias="ENGARDE_DATABASE_URL",
        description="postgresql://user:pw@host:port/db; unset = SQLite file in the cwd",
    )
    service_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIGNUP_SYNC_SERVICE_TOKEN",
        description="full-access bearer token(s); unset = one generated and printed at start",
    )
    read_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIGNUP_SYNC_READ_TOKENS",
        description="read-only bearer token(s): analytics, leads, exports, the dashboard",
    )
    ingest_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIGNUP_SYNC_INGEST_TOKENS",
        description="ingest-only bearer token(s): events, batches, conversions, CSV imports",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="CORS_ORIGINS"
    )
    port: int = Field(default=8001, ge=1, le=65535, validation_alias="PORT")
    host: str = Field(default="0.0.0.0", validation_alias="HOST")  # noqa: S104 - a service listens on all interfaces by design
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    log_format: str | None = Field(
        default=None,
        validation_alias="LOG_FORMAT",
        description="console or json; unset = console on a terminal, JSON otherwise",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, validation_alias="MAX_BODY_BYTES")
    max_batch_events: int = Field(default=1000, ge=1, le=10000, validation_alias="MAX_BATCH_EVENTS")
    max_metadata_bytes: int = Field(
        default=16 * 1024, ge=256, validation_alias="MAX_METADATA_BYTES"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, validation_alias="DB_POOL_SIZE")
    db_timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, validation_alias="DB_TIMEOUT_SECONDS"
    )
    health_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, validation_alias="HEALTH_TIMEOUT_SECONDS"
    )
    auto_migrate: bool | None = Field(default=None, validation_alias="AUTO_MIGRATE")
    sync_lease_ttl_seconds: float = Field(
        default=300.0,
        ge=1,
        le=86400,
        validation_alias="SYNC_LEASE_TTL_SECONDS",
        description="a sync's lease on its source lasts this long unless renewed (every page)",
    )
    sync_scheduler_enabled: bool = Field(default=True, validation_alias="SYNC_SCHEDULER_ENABLED")
    sync_scheduler_interval_seconds: float = Field(
        default=60.0, ge=1, le=3600, validation_alias="SYNC_SCHEDULER_INTERVAL_SECONDS"
    )
    sync_default_schedule: str = Field(
        default="0 3 * * *",
        validation_alias="SYNC_DEFAULT_SCHEDULE",
        description="cron expression (UTC) for sources without their own schedule",
    )
    sync_max_error_messages: int = Field(
        default=20, ge=1, le=1000, validation_alias="SYNC_MAX_ERROR_MESSAGES"
    )
    webhook_worker_enabled: bool = Field(
        default=True,
        validation_alias="WEBHOOK_WORKER_ENABLED",
        description="process the webhook inbox inside the service (else: signup-sync worker)",
    )
    webhook_poll_interval_seconds: float = Field(
        default=2.0, gt=0, le=600, validation_alias="WEBHOOK_POLL_INTERVAL_SECONDS"
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=100, validation_alias="WEBHOOK_MAX_ATTEMPTS"
    )
    webhook_retry_base_seconds: float = Field(
        default=30.0, ge=0, le=86400, validation_alias="WEBHOOK_RETRY_BASE_SECONDS"
    )
    webhook_retry_max_seconds: float = Field(
        default=3600.0, ge=0, le=7 * 86400, validation_alias="WEBHOOK_RETRY_MAX_SECONDS"
    )
    webhook_claim_ttl_seconds: float = Field(
        default=300.0, ge=1, le=86400, validation_alias="WEBHOOK_CLAIM_TTL_SECONDS"
    )
    webhook_max_age_seconds: float = Field(
        default=300.0,
        ge=1,
        le=86400,
        validation_alias="WEBHOOK_MAX_AGE_SECONDS",
        description="a signed webhook whose timestamp is further than this from now is refused",
    )
    sync_max_pages_per_run: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        validation_alias="SYNC_MAX_PAGES_PER_RUN",
        description="a run stops `partial` after this many pages; the next run continues",
    )
    privacy_hash_key: SecretStr | None = Field(
        default=None,
        validation_alias="PRIVACY_HASH_KEY",
        description="HMAC key of erasure tombstones; unset = generated and stored in the DB",
    )
    metrics_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="METRICS_TOKEN",
        description="bearer token(s) for GET /metrics; unset = the service token(s)",
    )
    ingest_rate_limit_per_second: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000,
        validation_alias="INGEST_RATE_LIMIT_PER_SECOND",
        description="requests per second per token on ingestion endpoints; 0 = no limit",
    )
    ingest_rate_limit_burst: int = Field(
        default=50, ge=1, le=1_000_000, validation_alias="INGEST_RATE_LIMIT_BURST"
    )
    source_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        validation_alias="SOURCE_TIMEOUT_SECONDS",
        description="a source API call that sends nothing for this long is retried",
    )
    source_retry_attempts: int = Field(
        default=5, ge=1, le=50, validation_alias="SOURCE_RETRY_ATTEMPTS"
    )
    source_retry_max_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        validation_alias="SOURCE_RETRY_MAX_SECONDS",
        description="one source call gives up after this long, retries included",
    )
    segment_write_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SEGMENT_WRITE_KEYS",
        description="write keys of the /v1 tracking API: KEY or KEY=source_type, comma-separated; "
        "a public browser key adds @origin|origin (exact origins or *.example.com)",
    )
    tracking_keep_user_agent: bool = Field(
        default=False,
        validation_alias="TRACKING_KEEP_USER_AGENT",
        description="keep context.userAgent of /v1 messages (dropped before storing if false)",
    )
    tracking_rate_limit_per_key: int = Field(
        default=6000,
        ge=0,
        le=10_000_000,
        validation_alias="TRACKING_RATE_LIMIT_PER_KEY",
        description="requests per minute of one public (browser) write key; 0 = no limit",
    )
    tracking_rate_limit_per_address: int = Field(
        default=300,
        ge=0,
        le=10_000_000,
        validation_alias="TRACKING_RATE_LIMIT_PER_ADDRESS",
        description="requests per minute from one client address with public keys; 0 = none",
    )
    segment_event_map: str = Field(
        default="",
        validation_alias="SEGMENT_EVENT_MAP",
        description='JSON object of track names to event types, e.g. {"Demo Booked": '
        '"appointment_booked"}; merged over the defaults, null unmaps a name',
    )

    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="SIGNUP_SYNC_OUTBOUND_ALLOW",
        description="CIDRs outbound requests may reach besides public addresses, "
        "e.g. 10.0.0.0/8 for a LAN EasyAppointments; unset = public addresses only",
    )
    source_env_prefix: str = Field(
        default="SIGNUP_SYNC_SOURCE_",
        validation_alias="SIGNUP_SYNC_SOURCE_ENV_PREFIX",
        description="a source's *_env fields may only name variables starting with this",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        validation_alias="SIGNUP_SYNC_SECRETS_KEY",
        description="Fernet key(s), comma-separated, encrypting secret values stored with "
        "sources (`signup-sync secrets-key`); unset = values refused, *_env only",
    )
    import_dir: Path | None = Field(
        default=None,
        validation_alias="SIGNUP_SYNC_IMPORT_DIR",
        description="the only directory a source's file_path may read; unset = no file paths",
    )

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _allow(cls, value: Any) -> list[str]:
        from signup_sync.outbound.addresses import parse_allow

        values = _split_csv(value)
        parse_allow(values)  # raises ValueError naming the bad entry
        return values

    @field_validator("source_env_prefix")
    @classmethod
    def _env_prefix(cls, value: str) -> str:
        from signup_sync.credentials.names import check_prefix

        return check_prefix(value.strip())

    @field_validator("secrets_key")
    @classmethod
    def _secrets_key(cls, value: SecretStr | None) -> SecretStr | None:
        from signup_sync.credentials.vault import check_keys

        if value is None or not value.get_secret_value().strip():
            return None
        check_keys(_split_csv(value.get_secret_value()))
        return value

    @field_validator("import_dir", mode="before")
    @classmethod
    def _import_dir(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def secrets_key_list(self) -> list[str]:
        return _split_csv(self.secrets_key.get_secret_value()) if self.secrets_key else []

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> str:
        return normalise_database_url(value if isinstance(value, str) else None)

    @field_validator(
        "service_tokens",
        "read_tokens",
        "ingest_tokens",
        "metrics_tokens",
        "cors_origins",
        "segment_write_keys",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> list[str]:
        return _split_csv(value)

    @field_validator("service_tokens", "read_tokens", "ingest_tokens", "metrics_tokens")
    @classmethod
    def _tokens(cls, value: list[str]) -> list[str]:
        for token in value:
            if len(token) < 8:
                raise ValueError("each token must be at least 8 characters")
        return value

    @model_validator(mode="after")
    def _one_kind_per_token(self) -> Settings:
        # A token listed as full access and as read-only would silently be full access.
        kinds = {
            "SIGNUP_SYNC_SERVICE_TOKEN": self.service_tokens,
            "SIGNUP_SYNC_READ_TOKENS": self.read_tokens,
            "SIGNUP_SYNC_INGEST_TOKENS": self.ingest_tokens,
        }
        seen: dict[str, str] = {}
        for variable, tokens in kinds.items():
            for token in tokens:
                if token in seen and seen[token] != variable:
                    raise ValueError(
                        f"{variable}: a token is also listed in {seen[token]}; give each "
                        "token one kind"
                    )
                seen.setdefault(token, variable)
        return self

    @field_validator("privacy_hash_key")
    @classmethod
    def _privacy_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (`signup-sync token` makes one)")
        return value

    @field_validator("segment_write_keys")
    @classmethod
    def _write_keys(cls, value: list[str]) -> list[str]:
        from signup_sync.tracking.config import parse_write_keys

        parse_write_keys(value)  # raises ValueError naming the problem (never the key)
        return value

    @field_validator("segment_event_map")
    @classmethod
    def _event_map(cls, value: str) -> str:
        from signup_sync.tracking.config import parse_event_map

        parse_event_map(value)
        return value

    @field_validator("sync_default_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value.strip()):
            raise ValueError("must be a cron expression such as '0 3 * * *'")
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.lower()
        if level not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError("must be one of critical, error, warning, info, debug")
        return level

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        fmt = value.strip().lower()
        if fmt not in ("console", "json"):
            raise ValueError("must be console or json")
        return fmt

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        """Migrate at start (under PostgreSQL's advisory lock) unless AUTO_MIGRATE=false."""
        return self.auto_migrate if self.auto_migrate is not None else True


_ALIASES = {
    name: (field.validation_alias if isinstance(field.validation_alias, str) else name)
    for name, field in Settings.model_fields.items()
}


def env_file() -> str | None:
    """The dotenv file to read: SIGNUP_SYNC_ENV_FILE, else `.env`; set but empty: none."""
    return os.environ.get(ENV_FILE_VARIABLE, DEFAULT_ENV_FILE) or None


def load_settings(**overrides: Any) -> Settings:
    """Read the environment and the dotenv file; raise SettingsError naming the bad variable."""
    try:
        return Settings(_env_file=env_file(), **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a check across variables: its message names them
            raise SettingsError(message) from None
        loc = first["loc"][0]
        variable = _ALIASES.get(str(loc), str(loc)).upper()
        raise SettingsError(f"{variable}: {message}") from None
