"""A source check (``POST /sources/{id}/check``, ``signup-sync sources check``).

Like Airbyte's "test connection": validate the config, resolve every secret (naming all the
missing ones at once, not one run at a time), check the addresses against the outbound
policy, then authenticate and read ONE page through the connector, exactly as a run would
(same ``SourceContext``, shorter retries). Nothing is written: no sync log, no cursor, no
events, no lease. Messages go through ``describe`` (secrets blanked, personal data masked);
nothing the source sent is repeated beyond what the connector's own errors say.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync import sources
from signup_sync.credentials.vault import KEY_SETTING
from signup_sync.db.types import utcnow
from signup_sync.errors import InvalidInput, NotFound
from signup_sync.sources.access import SourceAccess
from signup_sync.sources.base import Connector, Page, RetryPolicy, SourceConfig, SourceContext
from signup_sync.sources.base import needs_upload as _needs_upload
from signup_sync.sources.errors import CredentialsRefused
from signup_sync.sources.secrets import MissingSecret, Secrets
from signup_sync.sync import repository as repo
from signup_sync.sync.sources_service import check_reach
from signup_sync.sync.tally import describe

CheckName = Literal["config", "secrets", "address", "authenticate", "read_one_page"]
# A check waits this long at most for its one page (retries included).
CHECK_DEADLINE_SECONDS = 90.0


def check_retry_policy() -> RetryPolicy:
    """Short: a check answers a person waiting at a terminal or a form."""
    return RetryPolicy(
        attempts=2,
        max_total_seconds=30.0,
        max_backoff_seconds=5.0,
        max_retry_after_seconds=10.0,
        timeout_seconds=15.0,
        request_deadline_seconds=30.0,
    )


class CheckItem(BaseModel):
    name: CheckName
    ok: bool
    skipped: bool = Field(default=False, description="not tried (nothing to try, or blocked)")
    detail: str


class SourceCheck(BaseModel):
    """What works and what does not, for one configured source. Nothing was written."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": False,
                    "source_id": 3,
                    "source_type": "zoom",
                    "source_name": "Webinars",
                    "is_active": True,
                    "checks": [
                        {"name": "config", "ok": True, "skipped": False, "detail": "valid"},
                        {
                            "name": "secrets",
                            "ok": False,
                            "skipped": False,
                            "detail": "2 of 2 missing: environment variable "
                            "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID is not set (needed for "
                            "client_id); environment variable "
                            "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET is not set (needed for "
                            "client_secret)",
                        },
                        {
                            "name": "address",
                            "ok": True,
                            "skipped": False,
                            "detail": "allowed by the outbound policy",
                        },
                        {
                            "name": "authenticate",
                            "ok": False,
                            "skipped": True,
                            "detail": "not tried: secrets are missing",
                        },
                        {
                            "name": "read_one_page",
                            "ok": False,
                            "skipped": True,
                            "detail": "not tried: secrets are missing",
                        },
                    ],
                    "missing_secrets": [
                        "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_ID",
                        "SIGNUP_SYNC_SOURCE_ZOOM_CLIENT_SECRET",
                    ],
                    "records_on_first_page": None,
                    "checked_at": "2026-06-03T09:12:00Z",
                }
            ]
        }
    )

    ok: bool
    source_id: int
    source_type: str
    source_name: str
    is_active: bool
    checks: list[CheckItem]
    missing_secrets: list[str] = Field(
        description="every environment variable a secret of this source needs and lacks"
    )
    records_on_first_page: int | None = None
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """The stored source a check works on (read once; the check then holds no session)."""

    source_id: int
    source_type: str
    name: str
    is_active: bool
    config: dict[str, Any]
    secret_values: dict[str, str]


async def load_target(session: AsyncSession, source_id: int) -> CheckTarget:
    source = await repo.get_source(session, source_id)
    if source is None:
        raise NotFound(f"No source with id {source_id}", field="source_id")
    return CheckTarget(
        source_id=source.id,
        source_type=source.source_type,
        name=source.name,
        is_active=source.is_active,
        config=dict(source.config or {}),
        secret_values=dict(source.secret_values or {}),
    )


def _config(connector: type[Connector], raw: Mapping[str, Any]) -> tuple[SourceConfig | None, str]:
    try:
        return connector.config_model.model_validate(raw), "valid"
    except ValidationError as exc:
        problems = [
            "config."
            + ".".join(str(p) for p in err.get("loc", ()))
            + ": "
            + str(err.get("msg", "invalid")).removeprefix("Value error, ")
            for err in exc.errors()
        ]
        return None, "; ".join(problems)


def _secrets(
    model: SourceConfig, target: CheckTarget, access: SourceAccess
) -> tuple[Secrets, list[str], list[str]]:
    """The run's resolver, every missing variable name, and why each secret is missing."""
    names = model.secret_env_names()
    resolver = access.secrets(model, target.secret_values)
    missing: list[str] = []
    reasons: list[str] = []
    for name in sorted(set(names) | set(target.secret_values)):
        problem = resolver.problem(name)
        if problem is not None:
            reasons.append(problem)
            if name in target.secret_values:
                if access.vault is None and KEY_SETTING not in missing:
                    missing.append(KEY_SETTING)
            elif names.get(name):
                missing.append(names[name])
    return resolver, missing, reasons


async def _first_page(connector: Connector) -> Page | None:
    pages: AsyncIterator[Page] = connector.pages()
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return None
    finally:
        closer = getattr(pages, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


async def run_check(
    target: CheckTarget,
    access: SourceAccess,
    *,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    deadline_seconds: float = CHECK_DEADLINE_SECONDS,
) -> SourceCheck:
    """Check one source; touches no database (``load_target`` read it)."""
    checks: list[CheckItem] = []
    missing: list[str] = []
    records: int | None = None

    def add(name: CheckName, ok: bool, detail: str, skipped: bool = False) -> None:
        checks.append(CheckItem(name=name, ok=ok, skipped=skipped, detail=detail))

    def blocked(why: str, *names: CheckName) -> None:
        for name in names:
            add(name, False, f"not tried: {why}", skipped=True)

    def answer() -> SourceCheck:
        return SourceCheck(
            # A skipped check is ok when there was nothing to try, not when it was blocked.
            ok=all(c.ok for c in checks),
            source_id=target.source_id,
            source_type=target.source_type,
            source_name=target.name,
            is_active=target.is_active,
            checks=checks,
            missing_secrets=missing,
            records_on_first_page=records,
            checked_at=utcnow(),
        )

    connector_cls = sources.REGISTRY.get(target.source_type)
    if connector_cls is None:
        why = f"{target.source_type} sources are pushed to the service (API, CSV); nothing to read"
        add("config", True, f"no connector: {why}")
        rest: tuple[CheckName, ...] = ("secrets", "address", "authenticate", "read_one_page")
        for name in rest:
            add(name, True, why, skipped=True)
        return answer()

    model, detail = _config(connector_cls, target.config)
    if model is None:
        add("config", False, detail)
        blocked("the config is invalid", "secrets", "address", "authenticate", "read_one_page")
        return answer()
    add("config", True, detail)

    resolver, missing, reasons = _secrets(model, target, access)
    total = len(set(model.secret_env_names()) | set(target.secret_values))
    if reasons:
        add("secrets", False, f"{len(reasons)} of {total} missing: " + "; ".join(reasons))
    else:
        add("secrets", True, f"all {total} available" if total else "none needed")

    try:
        await check_reach(model, access)
        add("address", True, "allowed by the outbound policy")
    except InvalidInput as exc:
        add("address", False, exc.message)
        blocked("an address or file is refused", "authenticate", "read_one_page")
        return answer()

    if _needs_upload(connector_cls, target.config):
        why = (
            "this source reads an uploaded export: sync it with the file "
            f"(signup-sync sync {target.source_type} --file EXPORT.csv, or POST "
            f"/sync/{target.source_type} with the file)"
        )
        add("authenticate", True, why, skipped=True)
        add("read_one_page", True, why, skipped=True)
        return answer()

    ctx = SourceContext(
        source_id=target.source_id,
        source_type=target.source_type,
        name=target.name,
        config=model,
        secrets=resolver,
        cursor=None,
        run_started_at=utcnow(),
        retry=retry or check_retry_policy(),
        access=access,
        transport=transport,
    )
    connector = connector_cls(ctx)
    try:
        async with asyncio.timeout(deadline_seconds):
            page = await _first_page(connector)
    except MissingSecret as exc:
        if not reasons:  # a secret the config names no variable for
            checks[1] = CheckItem(name="secrets", ok=False, detail=describe(exc, resolver))
        blocked("secrets are missing", "authenticate", "read_one_page")
        return answer()
    except CredentialsRefused as exc:
        add("authenticate", False, describe(exc, resolver))
        blocked("authentication failed", "read_one_page")
        return answer()
    except TimeoutError:
        add("authenticate", False, "not confirmed: no answer in time", skipped=True)
        add("read_one_page", False, f"no page within {deadline_seconds:g} s")
        return answer()
    except Exception as exc:
        add("authenticate", False, "not confirmed: reading stopped first", skipped=True)
        add("read_one_page", False, describe(exc, resolver))
        return answer()
    finally:
        with contextlib.suppress(Exception):
            await connector.aclose()
    records = len(page.records) if page is not None else 0
    add(
        "authenticate",
        True,
        "the source accepted the credentials" if total else "no credentials needed",
    )
    add(
        "read_one_page",
        True,
        f"read the first page: {records} record(s)"
        if page is not None
        else "the source answered with no records",
    )
    return answer()
