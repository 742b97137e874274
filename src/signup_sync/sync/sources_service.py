"""Source configuration: create, change, deactivate and describe configured sources.

A source's config holds no secret: it names the environment variables that do
(``*_env`` fields). Keys that look like a secret value are refused, and a ``*_env``
value must look like a variable name, so a pasted token is refused too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from croniter import croniter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync import sources
from signup_sync.db.models import FunnelSource
from signup_sync.db.types import utcnow
from signup_sync.errors import Conflict, InvalidInput, NotFound
from signup_sync.sync import repository as repo
from signup_sync.sync.schemas import SecretRef, SourceIn, SourceOut, SourcePatch

OFF_SCHEDULES = frozenset({"off", "manual", "never", "disabled"})
_SECRET_WORDS = (
    "secret",
    "token",
    "password",
    "passwd",
    "apikey",
    "api_key",
    "private_key",
    "credential",
    "access_key",
    "bearer",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def normalise_schedule(value: str | None) -> str | None:
    """A cron expression (UTC), ``off``, or None for the default daily schedule."""
    if value is None or not value.strip():
        return None
    text = " ".join(value.split())
    if text.lower() in OFF_SCHEDULES:
        return "off"
    if not croniter.is_valid(text):
        raise InvalidInput(
            "schedule must be a cron expression in UTC such as '0 3 * * *', or 'off'",
            field="schedule",
        )
    return text


def _check_secrets(config: dict[str, Any], prefix: str = "config") -> None:
    for key, value in config.items():
        where = f"{prefix}.{key}"
        lowered = str(key).lower()
        if lowered.endswith("_env"):
            if value is not None and (not isinstance(value, str) or not _ENV_NAME.match(value)):
                raise InvalidInput(
                    f"{where} must name an environment variable (letters, digits, _), "
                    "not hold the secret itself",
                    field=where,
                )
            continue
        if any(word in lowered for word in _SECRET_WORDS):
            raise InvalidInput(
                f"{where} looks like a secret; secrets are never stored: put it in an "
                f"environment variable and name it in {prefix}.{key}_env",
                field=where,
            )
        if isinstance(value, dict):
            _check_secrets(value, where)


def validate_config(source_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config to store: checked for secrets, then by the connector's config model."""
    _check_secrets(config)
    connector = sources.REGISTRY.get(source_type)
    if connector is None:
        return config
    try:
        model = connector.config_model.model_validate(config)
    except ValidationError as exc:
        errors = [
            {
                "field": "config." + ".".join(str(p) for p in err.get("loc", ())),
                "message": str(err.get("msg", "invalid")).removeprefix("Value error, "),
            }
            for err in exc.errors()
        ]
        first = errors[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        ) from None
    # Only what was given is stored: defaults stay the connector's, so they can improve.
    return model.model_dump(mode="json", exclude_unset=True)


def _secret_refs(source: FunnelSource) -> dict[str, SecretRef]:
    refs: dict[str, SecretRef] = {}
    connector = sources.REGISTRY.get(source.source_type)
    names: dict[str, str] = {}
    if connector is not None:
        try:
            names = connector.config_model.model_validate(source.config or {}).secret_env_names()
        except ValidationError:
            names = {}
    if not names:
        names = {
            k.removesuffix("_env"): v
            for k, v in (source.config or {}).items()
            if k.endswith("_env") and isinstance(v, str) and v
        }
    for name, env in names.items():
        refs[name] = SecretRef(env=env, set=bool(os.environ.get(env)))
    return refs


def to_out(source: FunnelSource) -> SourceOut:
    now = utcnow()
    running = (
        source.lease_sync_log_id
        if source.lease_owner and source.lease_expires_at and source.lease_expires_at > now
        else None
    )
    return SourceOut(
        id=source.id,
        source_type=source.source_type,
        name=source.name,
        is_active=source.is_active,
        schedule=source.schedule,
        config=dict(source.config or {}),
        secrets=_secret_refs(source),
        has_connector=source.source_type in sources.REGISTRY,
        cursor=source.cursor,
        last_sync_at=source.last_sync_at,
        last_sync_status=source.last_sync_status,
        total_leads_captured=source.total_leads_captured,
        running_sync_log_id=running,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


async def _unique_name(
    session: AsyncSession, source_type: str, name: str, own_id: int | None = None
) -> None:
    existing = await repo.find_source(session, source_type, name)
    if existing is not None and existing.id != own_id:
        raise Conflict(
            f"A {source_type} source named {name!r} already exists (id {existing.id})",
            field="name",
            source_id=existing.id,
        )


async def create_source(session: AsyncSession, body: SourceIn) -> SourceOut:
    source_type = body.source_type.value
    await _unique_name(session, source_type, body.name)
    now = utcnow()
    source = await repo.add_source(
        session,
        FunnelSource(
            source_type=source_type,
            name=body.name,
            is_active=body.is_active,
            schedule=normalise_schedule(body.schedule),
            config=validate_config(source_type, dict(body.config)),
            cursor=None,
            total_leads_captured=0,
            created_at=now,
            updated_at=now,
        ),
    )
    return to_out(source)


async def _get(session: AsyncSession, source_id: int) -> FunnelSource:
    source = await repo.get_source(session, source_id)
    if source is None:
        raise NotFound(f"No source with id {source_id}", field="source_id")
    return source


async def get_source(session: AsyncSession, source_id: int) -> SourceOut:
    return to_out(await _get(session, source_id))


async def list_sources(
    session: AsyncSession, *, source_type: str | None = None, active: bool | None = None
) -> list[SourceOut]:
    found: Sequence[FunnelSource] = await repo.list_sources(
        session, source_types=[source_type] if source_type else None, active=active
    )
    return [to_out(s) for s in found]


async def update_source(session: AsyncSession, source_id: int, patch: SourcePatch) -> SourceOut:
    source = await _get(session, source_id)
    given = patch.model_fields_set
    if patch.name is not None and patch.name != source.name:
        await _unique_name(session, source.source_type, patch.name, source.id)
        source.name = patch.name
    if patch.is_active is not None:
        source.is_active = patch.is_active
    if "schedule" in given:
        source.schedule = normalise_schedule(patch.schedule)
    if patch.config is not None:
        merged = dict(source.config or {})
        for key, value in patch.config.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        source.config = validate_config(source.source_type, merged)
    if patch.reset_cursor:
        source.cursor = None
    source.updated_at = utcnow()
    await session.flush()
    return to_out(source)


async def deactivate_source(session: AsyncSession, source_id: int) -> SourceOut:
    """``DELETE /sources/{id}``: keep the row and its history; stop syncing it."""
    source = await _get(session, source_id)
    source.is_active = False
    source.updated_at = utcnow()
    await session.flush()
    return to_out(source)
