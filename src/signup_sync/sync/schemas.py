"""Request and response shapes of sources and syncs, and the engine's run options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from signup_sync.events.schemas import IsoDateTime, check_metadata
from signup_sync.vocabulary import SourceType

SyncStatus = Literal["running", "success", "partial", "failed", "skipped"]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[IsoDateTime | None, AfterValidator(_utc)]


def _storable_text(value: str) -> str:
    # PostgreSQL text holds neither NUL nor unpaired surrogates: refuse them here, not at
    # the UPDATE (found by schemathesis: a 500 on PATCH /sources/{id}).
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (unpaired surrogate)") from None
    return value


SourceName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable_text)]
Schedule = Annotated[
    str | None,
    Field(
        default=None,
        max_length=100,
        description="cron expression in UTC (e.g. '0 3 * * *'); null = the default daily "
        "schedule; 'off' = only on demand",
    ),
]


@dataclass(slots=True)
class SyncOptions:
    """How one run reads its source (see ``sync.runner``)."""

    force: bool = False
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "force_sync": self.force,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "dry_run": self.dry_run,
        }


# ---- sources -------------------------------------------------------------------------------


def _storable(value: dict[str, Any]) -> dict[str, Any]:
    # Same limits as event metadata: size, depth, no NUL, valid Unicode, 64-bit numbers.
    return check_metadata(value) or {}


SafeConfig = Annotated[dict[str, Any], AfterValidator(_storable)]
SecretValue = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
SecretValues = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], SecretValue | None],
    Field(
        max_length=16,
        description='secret values by name (e.g. {"token": "..."}), stored encrypted '
        "(needs SIGNUP_SYNC_SECRETS_KEY) and never returned; null removes a stored value",
    ),
]

_SOURCE_EXAMPLE: JsonDict = {
    "source_type": "zoom",
    "name": "Marketing webinars",
    "is_active": True,
    "schedule": "0 3 * * *",
    "config": {
        "account_id_env": "SIGNUP_SYNC_SOURCE_ZOOM_ACCOUNT_ID",
        "client_id_env": "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID",
        "client_secret_env": "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET",
        "webinar_ids": ["84512345678"],
    },
}


class SourceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [_SOURCE_EXAMPLE]},
    )

    source_type: SourceType
    name: SourceName
    is_active: StrictBool = True
    schedule: Schedule = None
    config: SafeConfig = Field(
        default_factory=dict,
        description="non-secret settings of the source's connector; secrets are named by "
        "`*_env` fields holding environment variable names (SIGNUP_SYNC_SOURCE_...)",
    )
    secrets: SecretValues | None = None


class SourcePatch(BaseModel):
    """Fields to change. ``config`` is merged key by key; a key set to null is removed."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"is_active": False}, {"config": {"webinar_ids": []}}]},
    )

    name: SourceName | None = None
    is_active: StrictBool | None = None
    schedule: Schedule = None
    config: SafeConfig | None = None
    secrets: SecretValues | None = None
    reset_cursor: StrictBool = Field(
        default=False, description="forget the sync cursor: the next sync re-reads everything"
    )


class SecretRef(BaseModel):
    env: str | None = Field(
        default=None, description="the environment variable that holds the secret, if any"
    )
    stored: bool = Field(
        default=False, description="whether the value is stored (encrypted) with the source"
    )
    set: bool = Field(description="whether the secret is available to this process")
    problem: str | None = Field(
        default=None, description="why the named variable cannot be used (e.g. its prefix)"
    )


class SourceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SOURCE_EXAMPLE,
                    "id": 1,
                    "secrets": {
                        "client_secret": {
                            "env": "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET",
                            "set": True,
                        }
                    },
                    "has_connector": True,
                    "cursor": None,
                    "last_sync_at": "2026-06-03T03:00:12Z",
                    "last_sync_status": "success",
                    "total_leads_captured": 412,
                    "running_sync_log_id": None,
                    "created_at": "2026-06-01T09:00:00Z",
                    "updated_at": "2026-06-03T03:00:12Z",
                }
            ]
        }
    )

    id: int
    source_type: str
    name: str
    is_active: bool
    schedule: str | None
    config: dict[str, Any]
    secrets: dict[str, SecretRef]
    has_connector: bool
    cursor: dict[str, Any] | None
    last_sync_at: datetime | None
    last_sync_status: str | None
    total_leads_captured: int
    running_sync_log_id: int | None
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="what would stop a sync now, e.g. each secret whose variable is not set "
        "(POST /sources/{id}/check tries the source itself)",
    )


# ---- syncs ---------------------------------------------------------------------------------


class SyncRequest(BaseModel):
    """Optional body of ``POST /sync/{source_type}``; no body means all defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {},
                {"force_sync": True, "wait": False},
                {"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z", "dry_run": True},
            ]
        },
    )

    force_sync: bool = Field(default=False, description="ignore the cursor; re-read everything")
    since: UtcTime = Field(default=None, description="backfill window start (naive = UTC)")
    until: UtcTime = Field(default=None, description="backfill window end (naive = UTC)")
    dry_run: bool = Field(
        default=False, description="read and map, report what would change, write nothing"
    )
    source_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="only this source")
    wait: bool = Field(default=True, description="false: answer 202 with the sync log id at once")

    @model_validator(mode="after")
    def _window(self) -> SyncRequest:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    def options(self) -> SyncOptions:
        return SyncOptions(
            force=self.force_sync, since=self.since, until=self.until, dry_run=self.dry_run
        )


class SourceSyncResult(BaseModel):
    """One source's run."""

    status: SyncStatus
    source_type: str
    source_id: int | None
    source_name: str | None
    leads_processed: int = 0
    leads_created: int = 0
    leads_updated: int = 0
    leads_skipped: int = 0
    errors_count: int = 0
    error_messages: list[str] = Field(default_factory=list)
    started_at: datetime
    completed_at: datetime | None
    duration_seconds: float | None
    sync_log_id: int | None
    dry_run: bool = False
    pages: int = 0
    recovered_by_poll: int = Field(
        default=0,
        description="records for which this run stored an event no webhook had delivered",
    )
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class SyncSummary(BaseModel):
    """Counters summed over the sources of one request, and each source's own result."""

    message: str
    sources_total: int
    sources_succeeded: int
    sources_partial: int
    sources_failed: int
    sources_skipped: int
    leads_processed: int
    leads_created: int
    leads_updated: int
    leads_skipped: int
    errors_count: int
    sources: list[SourceSyncResult]


_SOURCE_RESULT_EXAMPLE: dict[str, Any] = {
    "status": "success",
    "source_type": "zoom",
    "source_id": 1,
    "source_name": "Marketing webinars",
    "leads_processed": 148,
    "leads_created": 37,
    "leads_updated": 104,
    "leads_skipped": 7,
    "errors_count": 0,
    "error_messages": [],
    "started_at": "2026-06-03T03:00:02Z",
    "completed_at": "2026-06-03T03:00:12Z",
    "duration_seconds": 10.4,
    "sync_log_id": 57,
    "dry_run": False,
    "pages": 2,
    "recovered_by_poll": 0,
    "message": "148 records: 37 new, 104 updated, 7 skipped",
    "details": {},
}
_SYNC_RESPONSE_EXAMPLE: dict[str, Any] = {
    "status": "success",
    "source_type": "zoom",
    "source_name": "Marketing webinars",
    "leads_processed": 148,
    "leads_created": 37,
    "leads_updated": 104,
    "leads_skipped": 7,
    "errors_count": 0,
    "error_messages": [],
    "started_at": "2026-06-03T03:00:02Z",
    "completed_at": "2026-06-03T03:00:12Z",
    "duration_seconds": 10.4,
    "sync_log_id": 57,
    "sync_log_ids": [57],
    "dry_run": False,
    "summary": {
        "message": "1 source synced: 1 succeeded",
        "sources_total": 1,
        "sources_succeeded": 1,
        "sources_partial": 0,
        "sources_failed": 0,
        "sources_skipped": 0,
        "leads_processed": 148,
        "leads_created": 37,
        "leads_updated": 104,
        "leads_skipped": 7,
        "errors_count": 0,
        "sources": [_SOURCE_RESULT_EXAMPLE],
    },
}


class SyncResponse(BaseModel):
    """The seed's sync result, for one source type (or ``all``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SYNC_RESPONSE_EXAMPLE]})

    status: Literal["success", "partial", "failed", "skipped"]
    source_type: str
    source_name: str | None
    leads_processed: int
    leads_created: int
    leads_updated: int
    leads_skipped: int
    errors_count: int
    error_messages: list[str]
    started_at: datetime
    completed_at: datetime
    duration_seconds: float
    sync_log_id: int | None
    sync_log_ids: list[int]
    dry_run: bool
    summary: SyncSummary


class StartedSource(BaseModel):
    source_id: int
    source_name: str
    sync_log_id: int | None


class SyncAccepted(BaseModel):
    """``wait: false``: the syncs run in the background; follow them by their log ids."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "running",
                    "source_type": "zoom",
                    "sync_log_id": 58,
                    "sync_log_ids": [58],
                    "sources": [
                        {"source_id": 1, "source_name": "Marketing webinars", "sync_log_id": 58}
                    ],
                    "status_url": "/sync/status/zoom",
                    "message": "1 sync started in the background",
                }
            ]
        }
    )

    status: Literal["running"] = "running"
    source_type: str
    sync_log_id: int | None
    sync_log_ids: list[int]
    sources: list[StartedSource]
    status_url: str
    message: str


class SyncLogOut(BaseModel):
    id: int
    source_id: int | None
    source_type: str
    source_name: str | None
    status: str
    trigger: str
    started_at: datetime
    completed_at: datetime | None
    duration_seconds: float | None
    leads_processed: int
    leads_created: int
    leads_updated: int
    leads_skipped: int
    errors_count: int
    error_messages: list[str]
    summary: str | None
    options: dict[str, Any] | None


class SourceStatus(BaseModel):
    source_id: int
    source_name: str
    is_active: bool
    schedule: str | None
    next_scheduled_at: datetime | None
    last_sync_at: datetime | None
    last_sync_status: str | None
    is_running: bool
    running_sync_log_id: int | None
    success_rate: float | None = Field(
        description="successful runs / finished runs over the source's history; null if none"
    )
    total_leads_captured: int
    recent_logs: list[SyncLogOut]


class SyncStatusOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_type": "zoom",
                    "has_connector": True,
                    "last_sync_at": "2026-06-03T03:00:12Z",
                    "last_sync_status": "success",
                    "is_running": False,
                    "sources": [
                        {
                            "source_id": 1,
                            "source_name": "Marketing webinars",
                            "is_active": True,
                            "schedule": "0 3 * * *",
                            "next_scheduled_at": "2026-06-04T03:00:00Z",
                            "last_sync_at": "2026-06-03T03:00:12Z",
                            "last_sync_status": "success",
                            "is_running": False,
                            "running_sync_log_id": None,
                            "success_rate": 1.0,
                            "total_leads_captured": 412,
                            "recent_logs": [],
                        }
                    ],
                }
            ]
        }
    )

    source_type: str
    has_connector: bool
    last_sync_at: datetime | None
    last_sync_status: str | None
    is_running: bool
    sources: list[SourceStatus]
