"""PostgreSQL fast path of ingestion's three statements: built once, one array per column.

Each statement is made with SQLAlchemy (so it says what the portable one says: the same
merge rules from ``bulk._lead_upsert_set``), compiled for PostgreSQL once per process, and
run with ``exec_driver_sql``: one prepared statement whatever the row count (rows travel as
ONE JSON text parameter, a list of objects keyed by column name, read back with
``json_to_recordset``), and none of the per-call construction, compilation and cache-key
work that dominated a one-event request. One array per column through ``unnest`` (how rows
travelled before) cost ~1 ms of driver CPU and as much of the server's per 50-row statement,
element by element; the JSON document costs a tenth of that on each side. Errors,
disconnects and statement events still go through SQLAlchemy's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from signup_sync.db.models import FunnelEvent, Lead

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's own, untyped

LEADS = cast(Table, Lead.__table__)
EVENTS = cast(Table, FunnelEvent.__table__)
LEAD_COLUMNS = tuple(c.name for c in LEADS.c if c.name != "id")
EVENT_COLUMNS = tuple(c.name for c in EVENTS.c if c.name != "id")


def _plain(column: Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return JSONB() if column.name == "metadata" else kind


def _rows(table: Table, names: Sequence[str], param: str, *extra: tuple[str, Any]) -> Any:
    """The rows of JSON parameter ``param`` (``[{column: value}, ...]``) as a table of
    ``names`` (typed as ``table``'s columns) and ``extra`` (name, type) columns."""
    columns = [column(n, _plain(table.c[n])) for n in names]
    columns += [column(n, kind) for n, kind in extra]
    document = sql_cast(bindparam(param, type_=String()), JSON())
    return (
        func.json_to_recordset(document)
        .table_valued(*columns)
        .render_derived(name=f"{param}_set", with_types=True)
    )


def _value(rows: Any, name: str) -> Any:
    """A column of ``_rows``; metadata None is stored as JSON null, as the ORM type does (a
    JSON null read by ``json_to_recordset`` would be SQL NULL)."""
    if name == "metadata":
        return func.coalesce(rows.c.metadata, literal_column("'null'::jsonb"))
    return rows.c[name]


def _unnest(table: Table, names: Sequence[str], param: str) -> Any:
    rows = _rows(table, names, param)
    return select(*[_value(rows, n) for n in names])


def _json(rows: Sequence[dict[str, Any]]) -> str:
    # Naive datetimes are UTC, as asyncpg's timestamptz codec takes them.
    return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()


def _lead_upsert(key: str) -> Any:
    from signup_sync.db.bulk import LEAD_KEY_COLUMNS, _lead_upsert_set

    key_column = LEADS.c[LEAD_KEY_COLUMNS[key].key]
    stmt: Any = postgresql.insert(LEADS).from_select(
        list(LEAD_COLUMNS), _unnest(LEADS, LEAD_COLUMNS, "lead_rows")
    )
    return stmt.on_conflict_do_update(
        index_elements=[key_column.key], set_=_lead_upsert_set(stmt.excluded)
    ).returning(LEADS.c.id, key_column, literal_column("xmax = 0").label("created"))


@dataclass(frozen=True)
class Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names in positional order
    constants: dict[str, Any]  # values of literal parameters the statement holds


def precompile(statement: Any) -> Compiled:
    """Compile for PostgreSQL once (callers cache the result); run it with ``run_compiled``."""
    compiled = statement.compile(dialect=_DIALECT)
    names = tuple(compiled.positiontup or ())
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return Compiled(str(compiled), names, constants)


@cache
def _upsert_sql(key: str) -> Compiled:
    return precompile(_lead_upsert(key))


# Event columns other than lead_id, as parameters of the combined statement (prefixed: the
# lead rows' parameters share some column names).
COMBINED_EVENT_COLUMNS = tuple(n for n in EVENT_COLUMNS if n != "lead_id")


@cache
def _combined_sql() -> Compiled:
    """Email leads upserted and their events inserted in ONE statement (two data-modifying
    CTEs): each event joins its lead by email; rows are numbered so ids follow input order."""
    lead = _lead_upsert("email").cte("lead")
    rows = _rows(
        EVENTS,
        COMBINED_EVENT_COLUMNS,
        "event_rows",
        ("lead_email", postgresql.VARCHAR()),
        ("ord", Integer()),
    )
    source = (
        select(lead.c.id, *[_value(rows, n) for n in COMBINED_EVENT_COLUMNS])
        .join(lead, lead.c.email == rows.c.lead_email)
        .order_by(rows.c.ord)
    )
    events = (
        postgresql.insert(EVENTS)
        .from_select(["lead_id", *COMBINED_EVENT_COLUMNS], source)
        .returning(EVENTS.c.id, EVENTS.c.created_at)
        .cte("ev")
    )
    no_time = sql_cast(null(), DateTime(timezone=True))
    stmt = select(
        literal(0).label("kind"), lead.c.id, lead.c.email, lead.c.created, no_time.label("at")
    ).union_all(
        select(
            literal(1),
            events.c.id,
            sql_cast(null(), String),
            sql_cast(null(), Boolean),
            events.c.created_at,
        )
    )
    return precompile(stmt)


@cache
def _insert_events_sql() -> Compiled:
    stmt = (
        postgresql.insert(EVENTS)
        .from_select(list(EVENT_COLUMNS), _unnest(EVENTS, EVENT_COLUMNS, "event_rows"))
        .returning(EVENTS.c.id, EVENTS.c.created_at)
    )
    return precompile(stmt)


def _text_array(name: str) -> Any:
    return bindparam(name, type_=ARRAY(postgresql.VARCHAR()))


@cache
def _find_sql(by_external: bool, by_idempotency: bool) -> Compiled:
    """Stored events by exact (source_type, external_id, event_type) triples, joined from
    an unnest of the keys (one unique-index seek per key, whatever the statistics say: an
    ``= ANY`` per column let the planner seek on source_type alone on a growing table), or
    by Idempotency-Key."""
    e = FunnelEvent
    parts = []
    if by_external:
        keys = (
            func.unnest(
                _text_array("source_types"), _text_array("external_ids"), _text_array("event_types")
            )
            .table_valued("source_type", "external_id", "event_type")
            .render_derived()
        )
        parts.append(
            select(*_stored_columns())
            .select_from(keys)
            .join(
                e,
                and_(
                    e.source_type == keys.c.source_type,
                    e.external_id == keys.c.external_id,
                    e.event_type == keys.c.event_type,
                ),
            )
            .join(Lead, Lead.id == e.lead_id)
        )
    if by_idempotency:
        parts.append(
            select(*_stored_columns())
            .join(Lead, Lead.id == e.lead_id)
            .where(e.idempotency_key == any_(_text_array("idempotency_keys")))
        )
    stmt = parts[0] if len(parts) == 1 else parts[0].union_all(parts[1])
    return precompile(stmt)


async def run_compiled(
    session: AsyncSession, statement: Compiled, params: dict[str, Any]
) -> list[Any]:
    """Rows of a precompiled statement run with ``params`` by name, on the session's connection."""
    values = {**statement.constants, **params}
    conn = await session.connection()
    result = await conn.exec_driver_sql(statement.sql, tuple(values[n] for n in statement.names))
    return list(result.all())


def _stored_columns() -> list[Any]:
    e = FunnelEvent
    return [
        e.id, e.lead_id, e.source_type, e.event_type, e.stage, e.status, e.occurred_at,
        e.created_at, e.external_id, e.idempotency_key, Lead.email,
    ]  # fmt: skip


@cache
def _one_sql() -> Compiled:
    """One email-keyed event, whole: the duplicate lookup, the lead upsert and the event
    insert in ONE statement. The writes happen only when the lookup found nothing."""
    e = FunnelEvent
    existing = (
        select(*_stored_columns())
        .join(Lead, Lead.id == e.lead_id)
        .where(
            or_(
                and_(
                    e.source_type == bindparam("x_source_type"),
                    e.external_id == bindparam("x_external_id"),
                    e.event_type == bindparam("x_event_type"),
                ),
                e.idempotency_key == bindparam("x_idempotency_key"),
            )
        )
        .cte("existing")
    )
    upsert: Any = postgresql.insert(LEADS).from_select(
        list(LEAD_COLUMNS),
        _unnest(LEADS, LEAD_COLUMNS, "lead_rows").where(~select(existing.c.id).exists()),
    )
    from signup_sync.db.bulk import _lead_upsert_set

    lead = (
        upsert.on_conflict_do_update(
            index_elements=["email"], set_=_lead_upsert_set(upsert.excluded)
        )
        .returning(LEADS.c.id, LEADS.c.email, literal_column("xmax = 0").label("created"))
        .cte("lead")
    )
    rows = _rows(EVENTS, COMBINED_EVENT_COLUMNS, "event_rows")
    events = (
        postgresql.insert(EVENTS)
        .from_select(
            ["lead_id", *COMBINED_EVENT_COLUMNS],
            select(lead.c.id, *[_value(rows, n) for n in COMBINED_EVENT_COLUMNS]).select_from(
                rows.join(lead, literal_column("true"))
            ),
        )
        .returning(EVENTS.c.id, EVENTS.c.created_at)
        .cte("ev")
    )
    pad = [sql_cast(null(), c.type) for c in _stored_columns()]
    stmt = select(literal(2).label("kind"), *existing.c).union_all(
        select(
            literal(0), lead.c.id, *pad[1:9], sql_cast(lead.c.created, String), *pad[10:11]
        ).select_from(lead),
        select(literal(1), events.c.id, *pad[1:7], events.c.created_at, *pad[8:]),
    )
    return precompile(stmt)


async def ingest_one(
    session: AsyncSession,
    external_key: tuple[str, str, str] | None,
    idempotency_key: str | None,
    lead_row: dict[str, Any],
    event_row: dict[str, Any],
) -> tuple[list[Any], tuple[int, bool] | None, tuple[int, Any] | None]:
    """(stored events under these keys, (lead id, created), (event id, created_at)): when
    the first list is not empty, nothing was written."""
    source_type, external_id, event_type = external_key or (None, None, None)
    params: dict[str, Any] = {
        "x_source_type": source_type,
        "x_external_id": external_id,
        "x_event_type": event_type,
        "x_idempotency_key": idempotency_key,
        "lead_rows": _json([lead_row]),
        "event_rows": _json([event_row]),
    }
    found = await run_compiled(session, _one_sql(), params)
    existing = [tuple(r[1:]) for r in found if r[0] == 2]
    lead = next(((r[1], r[10] == "true") for r in found if r[0] == 0), None)
    inserted = next(((r[1], r[8]) for r in found if r[0] == 1), None)
    return existing, lead, inserted


async def upsert_email_leads_with_events(
    session: AsyncSession,
    lead_rows: Sequence[dict[str, Any]],
    event_rows: Sequence[dict[str, Any]],
    lead_emails: Sequence[str],
) -> tuple[list[tuple[int, str, bool]], list[tuple[int, Any]]]:
    """``upsert_leads("email", ...)`` and ``insert_events`` in one round trip; ``event_rows``
    have no ``lead_id`` yet, ``lead_emails[i]`` names the lead of ``event_rows[i]``."""
    events = [
        {**row, "lead_email": email, "ord": i}
        for i, (row, email) in enumerate(zip(event_rows, lead_emails, strict=True))
    ]
    params = {"lead_rows": _json(lead_rows), "event_rows": _json(events)}
    found = await run_compiled(session, _combined_sql(), params)
    leads = [(r[1], r[2], bool(r[3])) for r in found if r[0] == 0]
    inserted = sorted((r[1], r[4]) for r in found if r[0] == 1)
    return leads, inserted


async def find_existing(
    session: AsyncSession,
    external_keys: Sequence[tuple[str, str, str]],
    idempotency_keys: Sequence[str],
) -> list[Any]:
    """Rows (id, lead_id, source_type, event_type, stage, status, occurred_at, created_at,
    external_id, idempotency_key, email) of events stored under these keys (an event found
    by both may come twice).

    The lookup alone is planned with its parameters, every time: a connection that first
    ran it while the table was small (a sync growing it from empty, a batch endpoint on a
    new database) would otherwise keep the cached generic plan, a sequential scan (measured:
    0.2 ms a page growing to 80 ms). Only this statement: forcing custom plans on the writes
    too made PostgreSQL re-plan every statement, foreign-key check and trigger query of a
    page (~2.5 ms a 50-row page), for plans that do not depend on table sizes."""
    if not external_keys and not idempotency_keys:
        return []
    params: dict[str, Any] = {}
    if external_keys:
        for i, name in enumerate(("source_types", "external_ids", "event_types")):
            params[name] = [k[i] for k in external_keys]
    if idempotency_keys:
        params["idempotency_keys"] = list(idempotency_keys)
    conn = await session.connection()
    await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    found = await run_compiled(
        session, _find_sql(bool(external_keys), bool(idempotency_keys)), params
    )
    await conn.exec_driver_sql("SET LOCAL plan_cache_mode TO DEFAULT")
    return found


async def upsert_leads(
    session: AsyncSession, key: str, rows: Sequence[dict[str, Any]]
) -> list[tuple[int, str, bool]]:
    """(id, key value, created) of each merged lead; see ``bulk.upsert_leads``."""
    found = await run_compiled(session, _upsert_sql(key), {"lead_rows": _json(rows)})
    return [(r[0], r[1], bool(r[2])) for r in found]


async def insert_events(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> list[tuple[int, Any]]:
    """(id, created_at) of each inserted event, in input order."""
    found = await run_compiled(session, _insert_events_sql(), {"event_rows": _json(rows)})
    # Ids come from one sequence in the order unnest yields the rows: sorting by id is input
    # order even if RETURNING were to answer in another order.
    return [(r[0], r[1]) for r in sorted(found, key=lambda r: r[0])]
