"""What a connector is: a config model, a stream of pages, and a record-to-events mapping.

A connector only knows its API. It never touches the database: the sync engine
(``signup_sync.sync``) hands it a ``SourceContext``, reads ``Page``s from ``pages()``,
maps every record with ``map_record`` and commits each page's events together with
``Page.cursor``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from signup_sync.events.records import EventRecord
from signup_sync.sources.access import SourceAccess


class SourceConfig(BaseModel):
    """Base of every connector's non-secret config (stored in ``funnel_sources.config``).

    Secrets are never in the config: it names the environment variables that hold them
    (fields ending in ``_env``, under SIGNUP_SYNC_SOURCE_), or their values are stored
    encrypted beside it; the engine resolves both into ``SourceContext.secrets``.
    """

    model_config = ConfigDict(extra="forbid")

    def secret_env_names(self) -> dict[str, str]:
        """``{secret name: environment variable}`` for every ``*_env`` field that is set."""
        return {
            name.removesuffix("_env"): value
            for name, value in self.model_dump().items()
            if name.endswith("_env") and isinstance(value, str) and value
        }

    @classmethod
    def secret_names(cls) -> list[str]:
        """Every secret this connector can use (its ``*_env`` fields without the suffix)."""
        return [n.removesuffix("_env") for n in cls.model_fields if n.endswith("_env")]

    def outbound_urls(self) -> dict[str, str]:
        """``{field: URL}`` of the absolute URLs given in this config (checked at config time)."""
        return {
            name: value
            for name in sorted(self.model_fields_set)
            if name.endswith("_url")
            and isinstance(value := getattr(self, name), str)
            and "://" in value
        }

    def outbound_hosts(self) -> dict[str, tuple[str, int]]:
        """``{field: (host, port)}`` of other servers this config connects to (not HTTP)."""
        return {}


@dataclass(slots=True)
class RetryPolicy:
    """Bounded retries: attempts and total time. Tests set ``wait_scale=0`` for no sleeping."""

    attempts: int = 5
    max_total_seconds: float = 300.0
    base_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 900.0
    wait_scale: float = 1.0
    # Per phase (connect, read, write, pool) of one request...
    timeout_seconds: float = 30.0
    # ...and for the whole request, body included: a server that drips bytes cannot hold a
    # run forever.
    request_deadline_seconds: float = 120.0


@dataclass(frozen=True, slots=True)
class StoredRef:
    """An event already stored, with its lead's keys: what a connector may ask the engine."""

    event_id: int
    external_id: str
    event_type: str
    status: str
    occurred_at: datetime
    created_at: datetime
    email: str | None
    phone_e164: str | None


class StoredEvents(Protocol):
    """Read-only look-ups of stored events, offered by the engine (a connector never opens
    the database itself). Each call is one query; the engine lets it see every page the
    connector yielded before."""

    async def find(self, external_ids: Sequence[str]) -> list[StoredRef]:
        """Events of this source type stored under any of these external ids."""
        ...

    async def scan(self, prefix: str, *, after: int, limit: int) -> list[StoredRef]:
        """This source's events whose external id starts with ``prefix``, by event id
        above ``after`` (keyset), at most ``limit``."""
        ...


@dataclass(slots=True)
class SourceContext:
    """Everything one run of one connector may know."""

    source_id: int
    source_type: str
    name: str
    config: SourceConfig
    secrets: Mapping[str, str]
    cursor: Mapping[str, Any] | None
    run_started_at: datetime
    since: datetime | None = None
    until: datetime | None = None
    force: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # What the run may reach (addresses, variables, files); strict unless the settings widen it.
    access: SourceAccess = field(default_factory=SourceAccess)
    # Injected by tests to serve fake APIs in-process; None means real HTTP through the
    # outbound policy (``access.outbound``).
    transport: httpx.AsyncBaseTransport | None = None
    # Connectors that read a file (Posh.VIP export, CSV) get its bytes here when uploaded.
    upload: bytes | None = None
    # Look-ups of what earlier runs stored (None: connectors do without, e.g. in unit tests).
    stored: StoredEvents | None = None


@dataclass(slots=True)
class Page:
    """One page of raw source records and the cursor to store once they are committed.

    ``cursor`` None means "leave the stored cursor as it is".
    """

    records: list[Any]
    cursor: dict[str, Any] | None = None
    label: str = ""
    # How many records this run will read, where the API says (Eventbrite's object_count,
    # Zoom's total_records), summed over the listings started so far; None: not known.
    total: int | None = None


class Connector(Protocol):
    """One source's API. Implementations are plain classes registered in ``sources.REGISTRY``."""

    source_type: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]]

    def __init__(self, ctx: SourceContext) -> None: ...

    def pages(self) -> AsyncIterator[Page]:
        """Yield pages in order; resume from ``ctx.cursor`` unless ``ctx.force``."""
        ...

    def map_record(self, record: Any) -> list[EventRecord]:
        """Turn one raw record into zero or more events; raise SkipRecord(reason) if unusable."""
        ...

    async def aclose(self) -> None: ...


def needs_upload(connector: type[Connector], config: Mapping[str, Any]) -> bool:
    """Whether a source of this connector has nothing to read unless a file is uploaded.

    A connector that reads a file sets ``requires_upload = True``; if its config can also
    name a file to fetch (a path, a URL), it adds ``has_stored_file(config) -> bool``. The
    scheduler skips sources that need an upload; ``POST /sync/{type}`` asks for the file.
    """
    if not getattr(connector, "requires_upload", False):
        return False
    stored = getattr(connector, "has_stored_file", None)
    return not (callable(stored) and stored(config))
