"""Source configuration: create, change, deactivate and describe configured sources.

A source's config holds no secret: it names the environment variables that do (``*_env``
fields, only under the source prefix, never the service's own settings), or the secret's
value is given apart (``secrets``) and stored encrypted. Undocumented keys that look like a
secret are refused, and a ``*_env`` value must look like a variable name, so a pasted token
is refused too. Addresses and file paths are checked against ``SourceAccess`` here, and
again when the source is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from croniter import croniter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync import sources
from signup_sync.credentials.names import env_name_problem
from signup_sync.credentials.vault import KEY_SETTING, NO_KEY
from signup_sync.db.models import FunnelSource
from signup_sync.db.types import utcnow
from signup_sync.errors import Conflict, InvalidInput, NotFound
from signup_sync.outbound import OutboundRefused
from signup_sync.sources.access import FileRefused, SourceAccess
from signup_sync.sources.base import Connector, SourceConfig
from signup_sync.sources.secrets import Secrets
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


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _check_keys(
    config: dict[str, Any], documented: frozenset[str], prefix: str, where: str = "config"
) -> None:
    """``*_env`` names obey the prefix rule; undocumented keys must not look like secrets.

    Documented keys (the connector's config fields, e.g. Zoom's ``token_url``) are never
    secrets: secrets are only ever named by ``*_env`` fields or given in ``secrets``.
    """
    for key, value in config.items():
        path = f"{where}.{key}"
        if str(key).lower().endswith("_env"):
            if value is None:
                continue
            problem = (
                env_name_problem(value, prefix)
                if isinstance(value, str)
                else "must name an environment variable"
            )
            if problem is not None:
                raise InvalidInput(f"{path}: {problem}", field=path)
            continue
        if key in documented:
            continue
        if _looks_secret(str(key)):
            raise InvalidInput(
                f"{path} looks like a secret; secrets are never stored in the config: give "
                f"its value in the request's secrets object, or put it in an environment "
                f"variable starting with {prefix} and name it in {where}.{key}_env",
                field=path,
            )
        if isinstance(value, dict):
            _check_keys(value, frozenset(), prefix, path)


def _model(connector: type[Connector], config: dict[str, Any]) -> SourceConfig:
    try:
        model: SourceConfig = connector.config_model.model_validate(config)
        return model
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


async def check_reach(model: SourceConfig, access: SourceAccess) -> None:
    """Addresses and files the config names, checked now (and again when used)."""
    for name, url in model.outbound_urls().items():
        field = f"config.{name}"
        try:
            await access.outbound.check_url(url)
        except ValueError as exc:
            raise InvalidInput(f"{field} {exc}", field=field) from None
        except OutboundRefused as exc:
            raise InvalidInput(f"{field}: {exc}", field=field) from None
    for name, (host, port) in model.outbound_hosts().items():
        field = f"config.{name}"
        try:
            await access.outbound.check_host(host, port)
        except OutboundRefused as exc:
            raise InvalidInput(f"{field}: {exc}", field=field) from None
    file_path = getattr(model, "file_path", None)
    if isinstance(file_path, str) and file_path:
        try:
            access.import_path(file_path)
        except FileRefused as exc:
            raise InvalidInput(f"config.file_path: {exc}", field="config.file_path") from None


async def validate_config(
    source_type: str, config: dict[str, Any], access: SourceAccess
) -> dict[str, Any]:
    """The config to store: secrets and names checked, the connector's model, then reach."""
    connector = sources.REGISTRY.get(source_type)
    documented = frozenset(connector.config_model.model_fields) if connector else frozenset()
    _check_keys(config, documented, access.env_prefix)
    if connector is None:
        return config
    model = _model(connector, config)
    await check_reach(model, access)
    # Only what was given is stored: defaults stay the connector's, so they can improve.
    return model.model_dump(mode="json", exclude_unset=True)


def merge_secret_values(
    source_type: str,
    stored: dict[str, str] | None,
    given: dict[str, str | None] | None,
    access: SourceAccess,
) -> dict[str, str] | None:
    """The encrypted values to store after applying ``given`` (None removes a value)."""
    if not given:
        return stored
    connector = sources.REGISTRY.get(source_type)
    known = connector.config_model.secret_names() if connector else []
    merged = dict(stored or {})
    for name, value in given.items():
        field = f"secrets.{name}"
        if name not in known:
            allowed = ", ".join(known) or "none"
            raise InvalidInput(
                f"{field}: a {source_type} source has no secret named {name} "
                f"(its secrets: {allowed})",
                field=field,
            )
        if value is None:
            merged.pop(name, None)
            continue
        if access.vault is None:
            raise InvalidInput(f"{field}: {NO_KEY}", field=field)
        merged[name] = access.vault.encrypt(value)
    return merged or None


def _secret_refs(source: FunnelSource, access: SourceAccess) -> dict[str, SecretRef]:
    """Each secret as where it comes from and whether it is available; never a value."""
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
    stored = dict(source.secret_values or {})
    resolver = Secrets(names, stored=stored, vault=access.vault, prefix=access.env_prefix)
    refs: dict[str, SecretRef] = {}
    for name in sorted(set(names) | set(stored)):
        env = None if name in stored else names.get(name)
        refs[name] = SecretRef(
            env=env,
            stored=name in stored,
            set=resolver.is_set(name),
            problem=env_name_problem(env, access.env_prefix) if env else None,
        )
    return refs


def secret_warnings(refs: dict[str, SecretRef]) -> list[str]:
    """One line per secret this process cannot read now (names, never values)."""
    lines = []
    for name, ref in refs.items():
        if ref.set:
            continue
        if ref.stored:
            lines.append(f"secret {name}: the stored value cannot be read ({KEY_SETTING})")
        elif ref.env:
            why = ref.problem or f"environment variable {ref.env} is not set"
            lines.append(f"secret {name}: {why}")
    return lines


def to_out(source: FunnelSource, access: SourceAccess) -> SourceOut:
    now = utcnow()
    refs = _secret_refs(source, access)
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
        secrets=refs,
        warnings=secret_warnings(refs),
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


async def create_source(
    session: AsyncSession, body: SourceIn, access: SourceAccess | None = None
) -> SourceOut:
    access = access or SourceAccess()
    source_type = body.source_type.value
    config = await validate_config(source_type, dict(body.config), access)
    secret_values = merge_secret_values(source_type, None, body.secrets, access)
    await _unique_name(session, source_type, body.name)
    now = utcnow()
    source = await repo.add_source(
        session,
        FunnelSource(
            source_type=source_type,
            name=body.name,
            is_active=body.is_active,
            schedule=normalise_schedule(body.schedule),
            config=config,
            secret_values=secret_values,
            cursor=None,
            total_leads_captured=0,
            created_at=now,
            updated_at=now,
        ),
    )
    return to_out(source, access)


async def _get(session: AsyncSession, source_id: int) -> FunnelSource:
    source = await repo.get_source(session, source_id)
    if source is None:
        raise NotFound(f"No source with id {source_id}", field="source_id")
    return source


async def get_source(
    session: AsyncSession, source_id: int, access: SourceAccess | None = None
) -> SourceOut:
    return to_out(await _get(session, source_id), access or SourceAccess())


async def list_sources(
    session: AsyncSession,
    *,
    source_type: str | None = None,
    active: bool | None = None,
    access: SourceAccess | None = None,
) -> list[SourceOut]:
    found: Sequence[FunnelSource] = await repo.list_sources(
        session, source_types=[source_type] if source_type else None, active=active
    )
    return [to_out(s, access or SourceAccess()) for s in found]


async def update_source(
    session: AsyncSession, source_id: int, patch: SourcePatch, access: SourceAccess | None = None
) -> SourceOut:
    access = access or SourceAccess()
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
        source.config = await validate_config(source.source_type, merged, access)
    if patch.secrets:
        source.secret_values = merge_secret_values(
            source.source_type, source.secret_values, patch.secrets, access
        )
    if patch.reset_cursor:
        source.cursor = None
    source.updated_at = utcnow()
    await session.flush()
    return to_out(source, access)


async def deactivate_source(
    session: AsyncSession, source_id: int, access: SourceAccess | None = None
) -> SourceOut:
    """``DELETE /sources/{id}``: keep the row and its history; stop syncing it."""
    source = await _get(session, source_id)
    source.is_active = False
    source.updated_at = utcnow()
    await session.flush()
    return to_out(source, access or SourceAccess())
